"""debpulse-git: git pushes -> messages on the debpulse bus.

Subcommands: `hook` (post-receive: stdin, or the pending pushes the
installed hook left), `install` / `uninstall` (the hook in bare
repositories), `webhook` (GitLab push events over HTTP).

The hook path imports little at start: a push's background job should not
pay for the webhook's HTTP server or the installer.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from debpulse.emitters import cli
from debpulse.emitters.config import Config, Key, Table, Values
from debpulse.emitters.errors import ConfigError

from .push import DEFAULT_MAX_COMMITS

log = logging.getLogger("debpulse.git")

DEFAULT_LISTEN = "127.0.0.1:9945"
GIT = Table("git", {
    "repo_root": Key(str, None, "the directory repositories are under: `/srv/git/debian/hello.git` is then named "
                     "`debian/hello` (not set: `hello`, its directory's name)"),
    "web_url": Key(str, None, "the repositories' web pages, `{repo}` standing for the name, e.g. "
                   "`https://salsa.debian.org/{repo}`"),
    "max_commits": Key(int, DEFAULT_MAX_COMMITS, "commits described at most per push (an import of thousands "
                       "is one message)"),
    "listen": Key(str, DEFAULT_LISTEN, "where the webhook receiver listens, `HOST:PORT`"),
    "token": Key(str, None, "the secret token GitLab sends, when neither `token_file` nor "
                 "`$DEBPULSE_GIT_WEBHOOK_TOKEN` gives it"),
    "token_file": Key(str, None, "a file holding the secret token GitLab sends"),
    "max_body": Key(int, 2 * 1024 * 1024, "the largest webhook request accepted, in bytes"),
    "metrics_port": Key(int, None, "serve the webhook receiver's Prometheus metrics on `127.0.0.1:PORT`"),
}, "What debpulse-git needs: how to name repositories and link to them (the post-receive hook), and the "
   "GitLab webhook receiver.", read_by=("debpulse-git",))

EPILOG = """\
examples:
  debpulse-git install --web-url 'https://salsa.debian.org/{repo}' --repo-root /srv/git /srv/git/debian/*.git
  debpulse-git uninstall /srv/git/debian/hello.git
  git push  # the installed hook publishes git.receive, git.ref.* and git.tag.create
  printf '%s %s refs/heads/master\\n' OLD NEW | GIT_DIR=/srv/git/hello.git debpulse-git hook
  debpulse-git webhook --listen 127.0.0.1:9945 --token-file /etc/debpulse/gitlab-token

configuration ([git] table): repo_root, web_url, max_commits, listen, token, token_file, max_body,
  metrics_port (webhook)
"""


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("debpulse-git", "Publish git pushes on the debpulse bus.", EPILOG)
    cli.add_common(p, publish=True)
    subs = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def shared(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--repo-root", metavar="DIR",
                        help="name repositories by their path under DIR (debian/hello), not their directory name")
        sp.add_argument("--web-url", metavar="TEMPLATE",
                        help="a repository's web page, {repo} replaced (GitLab layout), for message links")
        sp.add_argument("--max-commits", type=int, metavar="N",
                        help="describe at most N commits of one ref update (default 100)")

    def sub(name: str, brief: str, description: str, example: str) -> argparse.ArgumentParser:
        return subs.add_parser(name, help=brief, description=description, epilog=f"example:\n  {example}",
                               formatter_class=argparse.RawDescriptionHelpFormatter)

    h = sub("hook", "publish a push (post-receive stdin, or --pending)",
            "Read '<old> <new> <ref>' lines on stdin, or drain --pending, and publish.",
            "printf '%s %s refs/heads/master\\n' OLD NEW | debpulse-git hook --git-dir /srv/git/hello.git")
    h.add_argument("--git-dir", metavar="DIR", help="the repository (default $GIT_DIR, else the current directory)")
    h.add_argument("--pending", metavar="DIR", type=Path, help="publish the pushes the installed hook saved in DIR")
    shared(h)
    cli.add_common(cli.after_command(h), publish=True)

    i = sub("install", "install the post-receive hook",
            "Install the hook; an existing post-receive hook is chained, not replaced.",
            "debpulse-git install --web-url 'https://salsa.debian.org/{repo}' --repo-root /srv/git "
            "/srv/git/debian/hello.git")
    i.add_argument("repos", nargs="+", metavar="REPO", type=Path)
    shared(i)
    i.add_argument("--hook-config", metavar="FILE", help="--config for the installed hook")
    i.add_argument("--hook-state-dir", metavar="DIR", help="--state-dir for the installed hook")
    after = cli.after_command(i)  # also before the subcommand, as on every command
    after.add_argument("--relay", metavar="URL", help="relay socket for the installed hook")
    after.add_argument("--environment", choices=("dev", "stg", "production"), help="topic environment for the hook")
    cli.add_common(after)

    u = sub("uninstall", "remove the hook and restore the previous one",
            "Remove the hook; a hook it chained is put back.", "debpulse-git uninstall /srv/git/debian/hello.git")
    u.add_argument("repos", nargs="+", metavar="REPO", type=Path)
    cli.add_common(cli.after_command(u))

    w = sub("webhook", "receive GitLab Push Hook and Tag Push Hook events",
            "HTTP receiver for GitLab push events (Salsa).\n\n"
            "GitLab sends the hook's secret token in X-Gitlab-Token. The receiver takes\n"
            "it from the first of: --token-file, [git] token_file, the environment\n"
            "variable DEBPULSE_GIT_WEBHOOK_TOKEN, [git] token; it refuses to start\n"
            "without one.",
            "debpulse-git webhook --listen 127.0.0.1:9945 --token-file /etc/debpulse/gitlab-token\n"
            "  DEBPULSE_GIT_WEBHOOK_TOKEN=s3cret debpulse-git webhook   # e.g. from systemd's LoadCredential\n"
            "\nAnswers: 200 with what was published (\"published 4 events\", \"nothing new: 4 events "
            "published before\"),\n401 bad token, 400 not a push, 413 too large, 503 the bus cannot take it now.")
    w.add_argument("--listen", metavar="HOST:PORT", help=f"address to listen on (default {DEFAULT_LISTEN})")
    w.add_argument("--token-file", metavar="FILE",
                   help="file holding the secret token GitLab sends (else [git] token_file, "
                        "$DEBPULSE_GIT_WEBHOOK_TOKEN, [git] token)")
    w.add_argument("--max-body", type=int, metavar="BYTES", help="largest accepted body (default 2 MiB)")
    w.add_argument("--max-commits", type=int, metavar="N", help="describe at most N commits of a push")
    w.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on 127.0.0.1:PORT (/metrics)")
    cli.add_common(cli.after_command(w), publish=True)
    return p


def _max_commits(args: argparse.Namespace, git: Values) -> int:
    n = git.pick(args.max_commits, "max_commits")
    if n < 0:
        raise ConfigError(f"{git.where}: max_commits must not be negative")
    return n


def check_web_url(template: str | None, where: str) -> None:
    if template:
        try:
            template.format(repo="debian/hello")
        except (KeyError, IndexError, ValueError):
            raise ConfigError(f"{where}: web_url may only use {{repo}}, not {template!r}") from None


def git_section(config: Config) -> Values:
    return GIT.read(config)


@cli.entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "hook":
        return hook(args)
    cli.setup_logging(args.verbose)
    if args.command == "install":
        return install(args)
    if args.command == "uninstall":
        return uninstall(args)
    return webhook(args)


def hook(args: argparse.Namespace) -> int:
    """Never fails a push: every error is one line on stderr, exit 0."""
    level = logging.DEBUG if args.verbose > 1 else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s debpulse-git[%(process)d]: %(levelname)s: %(message)s")
    try:
        return _hook(args)
    except Exception as exc:  # the push has happened; tell, never fail it
        print(f"debpulse-git: push not published: {exc}", file=sys.stderr)
        return 0


def _hook(args: argparse.Namespace) -> int:
    from debpulse.emitters.emitter import open_emitter
    from debpulse.emitters.errors import EmitError

    from .hook import HookSettings, PushSource, drain, keep_pending, repo_name, trim_log

    if getattr(args, "publish", None):
        raise ConfigError("the hook hands events to the relay; --publish is for long-running publishers")
    config = cli.config_from(args)
    git = git_section(config)
    git_dir = Path(args.git_dir or os.environ.get("GIT_DIR") or ".").absolute()
    root = args.repo_root or git["repo_root"]
    web_url = args.web_url or git["web_url"]
    check_web_url(web_url, "--web-url" if args.web_url else git.where)
    settings = HookSettings(
        git_dir=git_dir,
        repo=repo_name(git_dir, Path(root) if root else None),
        web_url=web_url,
        max_commits=_max_commits(args, git),
    )
    emitter = open_emitter(args, config, name="git", relay_only=True)
    try:
        source = PushSource(settings, emitter)
        if args.pending:
            trim_log(settings.state / "hook.log")
            done, left = drain(source, args.pending)
            log.info("%d push(es) published, %d left", done, left)
            return 0
        data = sys.stdin.buffer.read()
        try:
            source.handle(data, "stdin")
        except EmitError as exc:
            kept = keep_pending(settings.state / "pending", data)
            print(f"debpulse-git: bus unavailable ({exc}); push kept in {kept} for the next one", file=sys.stderr)
        return 0
    finally:
        emitter.close()


def _hook_args(args: argparse.Namespace, git_only: bool = False) -> list[str]:
    out: list[str] = []
    for flag, value in (
        ("--repo-root", args.repo_root and str(Path(args.repo_root).absolute())),
        ("--web-url", args.web_url),
        ("--max-commits", None if args.max_commits is None else str(args.max_commits)),
        ("--config", args.hook_config and str(Path(args.hook_config).absolute())),
        ("--state-dir", args.hook_state_dir and str(Path(args.hook_state_dir).absolute())),
        ("--relay", args.relay),
        ("--environment", args.environment),
    ):
        if value:
            out += [flag, value]
    return out


def install(args: argparse.Namespace) -> int:
    from .install import default_command, hook_text
    from .install import install as install_hook

    check_web_url(args.web_url, "--web-url")
    text = hook_text(default_command(), _hook_args(args))
    for repo in args.repos:
        print(f"{repo}: {install_hook(repo, text)}")
    return 0


def uninstall(args: argparse.Namespace) -> int:
    from .install import uninstall as uninstall_hook

    for repo in args.repos:
        print(f"{repo}: {uninstall_hook(repo)}")
    return 0


def _address(value: str, where: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"{where}: listen must be HOST:PORT, not {value!r}")
    return host.strip("[]"), int(port)


def _token(args: argparse.Namespace, git: Values) -> str:
    path = args.token_file or git["token_file"]
    if path:
        try:
            token = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"token file {path}: {exc.strerror}") from None
    else:
        token = os.environ.get("DEBPULSE_GIT_WEBHOOK_TOKEN") or git["token"]
    if not token:
        raise ConfigError("the webhook needs a secret token: --token-file, [git] token_file or token, "
                          "or DEBPULSE_GIT_WEBHOOK_TOKEN")
    return token


def webhook(args: argparse.Namespace) -> int:
    from debpulse.adapters.common.quarantine import Quarantine
    from debpulse.adapters.common.service import check_tables, metrics_port, ready, serve_metrics
    from debpulse.emitters import paths
    from debpulse.emitters.emitter import open_emitter

    from .webhook import WebhookServer

    config = cli.config_from(args)
    check_tables(config)
    git = git_section(config)
    listen = args.listen or git["listen"]
    address = _address(listen, "--listen" if args.listen else git.where)
    token = _token(args, git)
    max_body = git.pick(args.max_body, "max_body")
    port = metrics_port(args, git)
    state = Path(args.state_dir) if args.state_dir else paths.state_dir()
    emitter = open_emitter(args, config, name="git-webhook")
    try:
        try:
            server = WebhookServer(address, token=token, emitter=emitter,
                                   quarantine=Quarantine(state / "git-webhook" / "rejected", "git-webhook"),
                                   max_body=max_body, max_commits=_max_commits(args, git))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {listen}: {exc.strerror}") from None
        log.info("listening on http://%s:%d/", *server.server_address[:2])
        serve_metrics(port)
        ready("listening on http://{}:{}/".format(*server.server_address[:2]))
        with server:
            server.serve_forever()
    finally:
        emitter.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
