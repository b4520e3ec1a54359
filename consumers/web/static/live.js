// debpulse live pages: new messages and pulse charts by Server-Sent Events.
// The page is whole without this script; it only keeps it current.
(function () {
  "use strict";
  var data = document.body.dataset;
  if (!window.EventSource || !data.stream) return;
  var list = document.getElementById("messages");
  var status = document.getElementById("status");
  var keep = parseInt(data.rows || "50", 10);
  var last = data.after;

  function show(text, kind) {
    if (status) { status.textContent = text; status.className = "status " + kind; }
  }

  function add(html, id) {
    if (!list || document.getElementById("m" + id)) return;  // the page and the stream overlap
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    var item = t.content.firstElementChild;
    item.classList.add("new");
    list.insertBefore(item, list.firstElementChild);
    var empty = document.getElementById("empty");
    if (empty) empty.remove();
    while (list.children.length > keep) list.removeChild(list.lastElementChild);
  }

  function charts(json) {
    var given = JSON.parse(json);
    Object.keys(given).forEach(function (name) {
      var box = document.querySelector('[data-chart="' + name + '"]');
      if (box) box.innerHTML = given[name];
    });
  }

  function connect() {
    // A browser resumes by itself with Last-Event-ID; a new EventSource
    // (after the server refused one) says where with `after`.
    var url = data.stream + (data.stream.indexOf("?") < 0 ? "?" : "&") + "after=" + encodeURIComponent(last);
    var source = new EventSource(url);
    source.onopen = function () { show("live", "live"); };
    source.addEventListener("message", function (e) {
      if (e.lastEventId) last = e.lastEventId;
      add(e.data, e.lastEventId);
    });
    source.addEventListener("pulse", function (e) { charts(e.data); });
    source.onerror = function () {
      show("reconnecting…", "down");
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    };
  }
  show("connecting…", "down");
  connect();
})();
