"""The pure parts: hook stdin, raw git objects, numstat output, text decoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from debpulse.adapters.scm.gitobjects import parse_batch, parse_commit, parse_numstat, parse_tag
from debpulse.adapters.scm.refs import parse, parse_line
from debpulse.adapters.scm.text import decode
from debpulse.emitters.errors import InputError

ZERO = "0" * 40


def stdin(shared_fixtures: Path, name: str) -> bytes:
    return (shared_fixtures / "git" / name).read_bytes()


def test_create_master(shared_fixtures: Path) -> None:
    [u] = parse(stdin(shared_fixtures, "post-receive-stdin-01-create-master.txt"))
    assert (u.old, u.new, u.ref) == (ZERO, "a7e336ab45d3934e789c412e0ec08763ef7ea06c", "refs/heads/master")
    assert u.created and not u.deleted
    assert (u.kind, u.name) == ("branch", "master")


def test_update_tag_and_new_branch(shared_fixtures: Path) -> None:
    master, tag, upstream = parse(stdin(shared_fixtures, "post-receive-stdin-02-update-tag-newbranch.txt"))
    assert not master.created and not master.deleted and master.name == "master"
    assert tag.created and (tag.kind, tag.name) == ("tag", "debian/1.0-1")
    assert upstream.created and upstream.kind == "branch" and upstream.name == "upstream"


def test_delete_branch(shared_fixtures: Path) -> None:
    [u] = parse(stdin(shared_fixtures, "post-receive-stdin-03-delete-branch.txt"))
    assert u.deleted and not u.created and u.old.startswith("d9dce48")


def test_sha256_and_other_refs() -> None:
    u = parse_line(b"0" * 64 + b" " + b"ab" * 32 + b" refs/notes/commits\n")
    assert u.created and u.kind == "other" and u.name == "refs/notes/commits"


@pytest.mark.parametrize("line", [
    b"garbage",
    b"a7e336ab45d3934e789c412e0ec08763ef7ea06c refs/heads/master",
    b"XYZ " + b"0" * 40 + b" refs/heads/master",
    b"0" * 40 + b" " + b"1" * 64 + b" refs/heads/master",
    b"0" * 40 + b" " + b"1" * 40 + b" heads/master",
    b"0" * 40 + b" " + b"0" * 40 + b" refs/heads/master",
])
def test_bad_lines(line: bytes) -> None:
    with pytest.raises(InputError) as exc:
        parse_line(line)
    assert "\n" not in exc.value.reason


def test_non_utf8_ref_name() -> None:
    u = parse_line(b"0" * 40 + b" " + b"1" * 40 + b" refs/heads/caf\xe9")
    assert u.name == "café"


def test_annotated_tag_object(shared_fixtures: Path) -> None:
    raw = stdin(shared_fixtures, "annotated-tag-object.txt")
    tag = parse_tag("55ef7f76d15f396c18e679b3909239829e6daece", raw)
    assert tag.target == "93ba66dd334cba69476228a1d85c3bdc4290798b"
    assert (tag.target_type, tag.name) == ("commit", "debian/1.0-1")
    assert tag.tagger is not None and (tag.tagger.name, tag.tagger.email) == ("Jane Maintainer", "jane@example.org")
    assert tag.message == "hello Debian release 1.0-1\n"


def test_signed_tag_message_drops_the_signature() -> None:
    raw = (b"object " + b"1" * 40 + b"\ntype commit\ntag v1\ntagger T <t@x> 1 +0000\n\nRelease\n"
           b"-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n")
    assert parse_tag("2" * 40, raw).message == "Release\n"


COMMIT = (b"tree 594f89dd3fc10f761334baf6fc9ea989878af6a0\n"
          b"parent d9dce48da46babed65355658eb648b9ff1552376\n"
          b"author Jane Maintainer <jane@example.org> 1795773251 +0000\n"
          b"committer Jane Maintainer <jane@example.org> 1795773251 +0000\n"
          b"\nFix typo in changelog\n")


def test_commit() -> None:
    c = parse_commit("93ba66dd334cba69476228a1d85c3bdc4290798b", COMMIT)
    assert c.parents == ("d9dce48da46babed65355658eb648b9ff1552376",)
    assert (c.author.name, c.author.email) == ("Jane Maintainer", "jane@example.org")
    assert c.summary == "Fix typo in changelog" and c.message == "Fix typo in changelog\n"


def test_merge_commit_with_signature_and_mergetag() -> None:
    raw = (b"tree " + b"a" * 40 + b"\nparent " + b"b" * 40 + b"\nparent " + b"c" * 40 + b"\n"
           b"author A <a@x> 1 +0000\ncommitter C <c@x> 1 +0000\n"
           b"mergetag object " + b"c" * 40 + b"\n type commit\n tag v1\n \n v1 release\n"
           b"gpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n"
           b"\nMerge branch 'feature'\n\nDetails.\n")
    c = parse_commit("d" * 40, raw)
    assert c.parents == ("b" * 40, "c" * 40)
    assert c.summary == "Merge branch 'feature'"
    assert c.message == "Merge branch 'feature'\n\nDetails.\n"
    assert c.committer.name == "C"


def test_non_utf8_commit_without_declared_encoding() -> None:
    raw = (b"tree " + b"a" * 40 + b"\nauthor Ren\xe9 Fran\xe7ois <rene@example.org> 1 +0000\n"
           b"committer Ren\xe9 <rene@example.org> 1 +0000\n\nCorrig\xe9 \x93quotes\x94\n")
    c = parse_commit("d" * 40, raw)
    assert c.author.name == "René François"
    assert c.message == "Corrigé \u201cquotes\u201d\n"


def test_declared_encoding_is_honoured() -> None:
    raw = (b"tree " + b"a" * 40 + b"\nauthor \xa9imon <s@x> 1 +0000\ncommitter x <x@x> 1 +0000\n"
           b"encoding ISO-8859-2\n\n\xa9koda\n")
    c = parse_commit("d" * 40, raw)
    assert (c.message, c.author.name) == ("Škoda\n", "Šimon")
    # A declared encoding that cannot decode the bytes falls back to the chain.
    raw = b"tree " + b"a" * 40 + b"\nauthor x <x@x> 1 +0000\nencoding UTF-8\n\nd\xe9j\xe0\n"
    assert parse_commit("d" * 40, raw).message == "déjà\n"


def test_decode_never_fails() -> None:
    assert decode(b"\x81\x8d\x8f\x90\x9d") == "\x81\x8d\x8f\x90\x9d"  # undefined in cp1252: Latin-1
    assert decode(b"caf\xc3\xa9") == "café"
    assert decode(b"caf\xe9", "no-such-codec") == "café"


def test_broken_identity_is_kept_as_name() -> None:
    raw = b"tree " + b"a" * 40 + b"\nauthor nobody-knows\ncommitter x <x@x> 1 +0000\n\nm\n"
    assert parse_commit("d" * 40, raw).author.name == "nobody-knows"


def test_commit_without_tree_is_bad_input() -> None:
    with pytest.raises(InputError):
        parse_commit("d" * 40, b"author x <x@x> 1 +0000\n\nm\n")


def test_batch() -> None:
    tag = b"object " + b"1" * 40 + b"\ntype commit\ntag v1\n\nm\n"
    data = (b"2" * 40 + b" tag %d\n" % len(tag) + tag + b"\n" + b"3" * 40 + b" missing\n"
            + b"9" * 40 + b" commit %d\n" % len(COMMIT) + COMMIT + b"\n")
    objects = parse_batch(data)
    assert objects == {"2" * 40: ("tag", tag), "9" * 40: ("commit", COMMIT)}
    with pytest.raises(InputError):
        parse_batch(data[:-20])


def test_numstat() -> None:
    a, b, root = "a" * 40, "b" * 40, "c" * 40
    data = (f"{a}\0".encode() + b"3\t1\tdebian/changelog\0-\t-\tlogo.png\0" + b"2\t0\tpath with\ttab and caf\xe9\0"
            + f"{b}\0".encode() + f"{root}\0".encode() + b"5\t0\tdebian/control\0")
    stats = parse_numstat(data)
    assert stats[a].as_body() == {
        "files": {
            "debian/changelog": {"additions": 3, "deletions": 1, "lines": 4},
            "logo.png": {"additions": 0, "deletions": 0, "lines": 0},
            "path with\ttab and café": {"additions": 2, "deletions": 0, "lines": 2},
        },
        "total": {"additions": 5, "deletions": 1, "lines": 6, "files": 3},
    }
    assert stats[b].as_body() == {"files": {}, "total": {"additions": 0, "deletions": 0, "lines": 0, "files": 0}}
    assert stats[root].as_body()["total"]["additions"] == 5
    with pytest.raises(InputError):
        parse_numstat(b"1\t2\tno-commit-header\0")


def test_saved_push_and_refs_snapshot() -> None:
    from debpulse.adapters.scm.gitobjects import parse_refs
    from debpulse.adapters.scm.refs import split_saved

    line = b"0" * 40 + b" " + b"1" * 40 + b" refs/heads/master"
    refs = (b"1" * 40 + b" commit  refs/heads/master\n" + b"2" * 40 + b" tag commit refs/tags/v1\n"
            + b"3" * 40 + b" tag tree refs/tags/linux-tree\n" + b"4" * 40 + b" blob  refs/tags/key\n")
    saved = line + b"\n# debpulse-git refs\n" + refs + b"# debpulse-git end\n"
    stdin, snapshot = split_saved(saved)
    assert parse(stdin) == parse(line) and snapshot is not None
    assert parse_refs(snapshot) == {"refs/heads/master": "1" * 40, "refs/tags/v1": "2" * 40}
    # Cut short (no end mark): the refs are not trusted; plain stdin stays whole.
    assert split_saved(saved[:-20])[1] is None
    assert split_saved(line + b"\n") == (line + b"\n", None)
