"""Finding learners in what a platform exports (autograder/collect/), against odd and
hostile content: symbolic links, archives, names, layouts. Every case checks that the batch
goes on, that no learner is lost or merged with another, and that an honest learner in
the same class keeps their notebook byte for byte. The one slow test grades such a class
end to end with ``python -m autograder grade``."""

from __future__ import annotations

import copy
import csv
import io
import os
import stat
import subprocess
import sys
import unicodedata
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autograder.__main__ import command as grade_command  # noqa: E402
from autograder.collect import CollectError, Limits, collect, open_submissions, student_id  # noqa: E402
from autograder.collect.ids import HASHED_ID, PLAIN_ID  # noqa: E402

NB = "01_computational_graphs"


def notebook(text: str = "x = 1") -> bytes:
    cell = new_code_cell(text, id="cell-1")
    return nbformat.writes(new_notebook(cells=[cell])).encode()


HONEST = notebook("honest = True")


def make(root: Path, files: dict[str, bytes | str]) -> Path:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return root


def zip_bytes(
    files: dict[str, bytes],
    *,
    links: dict[str, str] | None = None,
    compression=zipfile.ZIP_DEFLATED,
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def zip_r(archive: Path, cwd: Path, top: str) -> Path:
    """What `cd cwd && zip -r archive top` writes: a folder entry, then its contents."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for dirpath, _dirnames, filenames in os.walk(cwd / top):
            rel = Path(dirpath).relative_to(cwd)
            zf.write(dirpath, f"{rel}/")
            for name in sorted(filenames):
                zf.write(Path(dirpath) / name, str(rel / name))
    return archive


def grab(
    path: Path,
    tmp_path: Path,
    notebooks=(NB,),
    limits: Limits | None = None,
    regexp: str | None = None,
):
    """collect() as the batch runs it; every learner's notebooks read."""
    opened = open_submissions(path, tmp_path / "scratch", limits)
    found, unmatched = collect(opened, list(notebooks), regexp)
    data = {learner: e.read(list(notebooks)) for learner, e in found.items()}
    return found, unmatched, data


def honest_kept(found, data, learner="ana"):
    assert data[learner][NB] == HONEST, found[learner]
    assert not found[learner].problems
    return True


def reasons(found, learner) -> str:
    return "; ".join(found[learner].notes)


def no_merges(found):
    """Every learner has an id of their own, in the gradebook and on disk."""
    folders = [e.folder for e in found.values()]
    assert len(folders) == len({f.casefold() for f in folders}), folders
    for f in folders:
        assert PLAIN_ID.fullmatch(f) or HASHED_ID.search(f), f
        assert len(f) <= 128 and "/" not in f and f.strip() == f
        assert not set(f) & set("*?[],\\\n")


# --- symbolic links, special files, unreadable and deep folders ---------------------------------


@pytest.fixture
def solutions(tmp_path) -> Path:
    """Stands for the instructor's solutions notebook; no learner may ever read it."""
    return make(tmp_path / "solutions", {f"{NB}.ipynb": notebook("SECRET_SOLUTION = 1")})


@pytest.fixture
def opened_paths(monkeypatch):
    """Every path the collector opens."""
    seen: list[str] = []
    real = os.open

    def spy(path, flags, *a, **k):
        seen.append(os.fsdecode(path))
        return real(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", spy)
    return seen


def test_symlink_to_the_solutions_notebook_is_refused_and_never_read(
    tmp_path, solutions, opened_paths
):
    cls = make(tmp_path / "class", {f"ana/{NB}.ipynb": HONEST})
    (cls / "mallory").mkdir()
    (cls / "mallory" / f"{NB}.ipynb").symlink_to(solutions / f"{NB}.ipynb")
    (cls / "trudy").mkdir()  # a relative link, and one hidden a folder down
    os.symlink(f"../../solutions/{NB}.ipynb", cls / "trudy" / f"{NB}.ipynb")
    (cls / "eve" / "work").mkdir(parents=True)
    (cls / "eve" / "work" / f"{NB}.ipynb").symlink_to(solutions / f"{NB}.ipynb")
    found, unmatched, data = grab(cls, tmp_path)
    assert set(found) == {"ana", "mallory", "trudy", "eve"} and not unmatched
    assert honest_kept(found, data)
    for learner in ("mallory", "trudy", "eve"):
        e = found[learner]
        assert data[learner] == {NB: None} and e.files == {} and e.refused(data[learner])
        assert "symbolic link" in reasons(found, learner)
        assert "not followed" in reasons(found, learner)
    assert "solutions" in reasons(found, "mallory")  # the reason names the target
    assert not any(p.startswith(str(solutions)) for p in opened_paths), opened_paths
    assert all(b"SECRET" not in (v or b"") for d in data.values() for v in d.values())


def test_dangling_links_and_link_loops_do_not_stop_the_batch(tmp_path):
    cls = make(tmp_path / "class", {f"ana/{NB}.ipynb": HONEST})
    (cls / "dan").mkdir()
    (cls / "dan" / f"{NB}.ipynb").symlink_to(tmp_path / "does-not-exist.ipynb")
    (cls / "lou").mkdir()
    os.symlink("b.ipynb", cls / "lou" / "a.ipynb")  # a -> b -> a
    os.symlink("a.ipynb", cls / "lou" / "b.ipynb")
    os.symlink(".", cls / "lou" / "again")  # a folder that contains itself
    os.symlink("..", cls / "lou" / "up")
    found, _, data = grab(cls, tmp_path)
    assert set(found) == {"ana", "dan", "lou"}
    assert honest_kept(found, data)
    assert data["dan"] == {NB: None} and "does-not-exist" in reasons(found, "dan")
    assert data["lou"] == {NB: None}
    assert reasons(found, "lou").count("symbolic link") == 4


def test_a_link_to_another_learners_folder_never_merges_the_two(tmp_path, opened_paths):
    cls = make(tmp_path / "class", {f"ana/{NB}.ipynb": HONEST, f"ben/{NB}.ipynb": notebook("b")})
    (cls / "mallory").symlink_to(cls / "ana")  # a learner folder that is a link
    (cls / "ben" / "copied").symlink_to(cls / "ana")  # and a link inside one
    found, _, data = grab(cls, tmp_path)
    assert set(found) == {"ana", "ben", "mallory"}
    assert honest_kept(found, data)
    assert data["ben"][NB] == notebook("b") and "symbolic link" in reasons(found, "ben")
    assert data["mallory"] == {NB: None} and found["mallory"].refused(data["mallory"])
    assert sum(p.endswith(f"ana/{NB}.ipynb") for p in opened_paths) == 1  # read once, for ana
    no_merges(found)


def test_link_to_etc_passwd_fifo_and_device_are_not_read(tmp_path, opened_paths):
    cls = make(tmp_path / "class", {f"ana/{NB}.ipynb": HONEST})
    (cls / "mallory").mkdir()
    (cls / "mallory" / f"{NB}.ipynb").symlink_to("/etc/passwd")
    (cls / "fifi").mkdir()
    os.mkfifo(cls / "fifi" / f"{NB}.ipynb")  # opening it would block
    (cls / "dev").mkdir()
    try:
        os.mknod(cls / "dev" / f"{NB}.ipynb", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        device = True
    except (PermissionError, OSError):
        device = False
    found, _, data = grab(cls, tmp_path)
    assert honest_kept(found, data)
    assert "/etc/passwd" in reasons(found, "mallory") and data["mallory"] == {NB: None}
    assert "FIFO" in reasons(found, "fifi") and data["fifi"] == {NB: None}
    if device:
        assert data["dev"] == {NB: None} and "not a regular file" in reasons(found, "dev")
    assert not any(p == "/etc/passwd" or "fifi" in p or "dev/" in p for p in opened_paths)


def test_unreadable_files_and_folders_are_that_learners_reason(tmp_path, monkeypatch):
    cls = make(
        tmp_path / "class",
        {f"ana/{NB}.ipynb": HONEST, f"pat/{NB}.ipynb": HONEST, f"rex/sub/{NB}.ipynb": HONEST},
    )
    real_open, real_scandir = os.open, os.scandir

    def deny_open(path, *a, **k):  # as root, chmod 000 would not stop us: pretend
        if "/pat/" in os.fsdecode(path):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)

    def deny_scandir(path="."):
        if os.fsdecode(path).endswith("rex"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "open", deny_open)
    monkeypatch.setattr(os, "scandir", deny_scandir)
    found, _, data = grab(cls, tmp_path)
    assert set(found) == {"ana", "pat", "rex"}
    assert honest_kept(found, data)
    assert data["pat"] == {NB: None} and "Permission denied" in reasons(found, "pat")
    assert found["pat"].refused(data["pat"])
    assert data["rex"] == {NB: None} and "could not be read" in reasons(found, "rex")


def test_very_deep_folders_and_long_names_do_not_stop_the_batch(tmp_path):
    cls = make(tmp_path / "class", {f"ana/{NB}.ipynb": HONEST})
    deep = cls / "deb"
    for _ in range(120):
        deep = deep / "d"
    deep.mkdir(parents=True)
    (deep / f"{NB}.ipynb").write_bytes(HONEST)
    long_name = "L" * 250  # near the 255-byte limit of a name
    make(cls, {f"{long_name}/{NB}.ipynb": HONEST, f"ana/{'n' * 240}.txt": b"x"})
    found, _, data = grab(cls, tmp_path)
    assert set(found) == {"ana", "deb", long_name}
    assert honest_kept(found, data)
    assert data["deb"] == {NB: None} and "nested more than 32 deep" in reasons(found, "deb")
    assert data[long_name][NB] == HONEST and len(found[long_name].folder) <= 64


# --- archives -------------------------------------------------------------------------------------


def export(tmp_path: Path, files: dict[str, bytes], **kw) -> Path:
    path = tmp_path / "export.zip"
    path.write_bytes(zip_bytes({f"ana/{NB}.ipynb": HONEST, **files}, **kw))
    return path


def test_a_zip_bomb_by_ratio_in_one_learners_zip_affects_that_learner_only(tmp_path):
    bomb = zip_bytes({f"{NB}.ipynb": b"\0" * (12 << 20)})  # 12 MiB of zeros, ~12 KiB
    assert len(bomb) < 100_000
    nested = zip_bytes({"inner.zip": zip_bytes({f"{NB}.ipynb": b"\0" * (12 << 20)})})
    found, _, data = grab(
        export(tmp_path, {"boris.zip": bomb, "nina.zip": nested, f"ben/{NB}.ipynb": notebook("b")}),
        tmp_path,
    )
    assert set(found) == {"ana", "ben", "boris", "nina"}
    assert honest_kept(found, data) and data["ben"][NB] == notebook("b")
    for learner in ("boris", "nina"):
        assert data[learner] == {NB: None} and found[learner].refused(data[learner])
        assert "zip bomb" in reasons(found, learner), reasons(found, learner)


def test_an_entry_that_lies_about_its_size_is_refused_while_it_streams(tmp_path):
    data = zip_bytes({f"{NB}.ipynb": b"\0" * (4 << 20)})
    i = data.index(b"PK\x01\x02")  # central directory entry
    lie = data[: i + 24] + (1000).to_bytes(4, "little") + data[i + 28 :]
    j = lie.index(b"PK\x03\x04")  # and the local header
    lie = lie[: j + 22] + (1000).to_bytes(4, "little") + lie[j + 26 :]
    assert zipfile.ZipFile(io.BytesIO(lie)).infolist()[0].file_size == 1000
    found, _, read = grab(export(tmp_path, {"liam.zip": lie}), tmp_path)
    assert honest_kept(found, read)
    assert read["liam"] == {NB: None} and "liam" in found
    assert "not read" in reasons(found, "liam")


@pytest.mark.slow
def test_too_many_entries(tmp_path):
    many = zip_bytes({f"f{i}.txt": b"" for i in range(10_001)} | {f"{NB}.ipynb": HONEST})
    found, _, data = grab(export(tmp_path, {"manny.zip": many}), tmp_path)
    assert set(found) == {"ana", "manny"} and honest_kept(found, data)
    assert data["manny"] == {NB: None}
    assert "more than the limit of 10,000" in reasons(found, "manny")
    # the export itself over the limit: the batch cannot start, and says why
    (tmp_path / "big.zip").write_bytes(many)
    with pytest.raises(CollectError, match="10,002 entries, more than the limit of 10,000"):
        open_submissions(tmp_path / "big.zip", tmp_path / "s")
    # limits are parameters; a folder of zips gives each its own
    small = Limits(max_entries=5)
    make(tmp_path / "dir", {f"ana/{NB}.ipynb": HONEST})
    (tmp_path / "dir" / "manny.zip").write_bytes(many)
    (tmp_path / "dir" / "fay.zip").write_bytes(zip_bytes({f"{NB}.ipynb": HONEST}))
    found, _, data = grab(tmp_path / "dir", tmp_path, limits=small)
    assert data["fay"][NB] == HONEST and data["manny"] == {NB: None}


def test_zips_nested_too_deep_are_not_opened(tmp_path):
    inner = zip_bytes({f"{NB}.ipynb": HONEST})
    for _ in range(3):
        inner = zip_bytes({"deeper.zip": inner})
    ok = zip_bytes({"inner.zip": zip_bytes({f"{NB}.ipynb": notebook("depth 3")})})
    found, _, data = grab(export(tmp_path, {"dora.zip": inner, "otto.zip": ok}), tmp_path)
    assert set(found) == {"ana", "dora", "otto"} and honest_kept(found, data)
    assert data["otto"][NB] == notebook("depth 3")  # export 1, otto.zip 2, inner.zip 3
    assert data["dora"] == {NB: None}
    assert "nested 4 deep, more than the limit of 3" in reasons(found, "dora")


def test_symlink_entries_are_not_created_and_not_followed(tmp_path, solutions):
    path = export(
        tmp_path,
        {f"ben/{NB}.ipynb": notebook("b")},
        links={
            f"mallory/{NB}.ipynb": str(solutions / f"{NB}.ipynb"),
            f"ben/extra/{NB}.ipynb": "/etc/passwd",
            "lnk": "mallory",
        },
    )
    found, _, data = grab(path, tmp_path)
    assert honest_kept(found, data)
    assert data["mallory"] == {NB: None} and "symbolic link to" in reasons(found, "mallory")
    assert data["ben"][NB] == notebook("b") and "/etc/passwd" in reasons(found, "ben")
    assert "lnk" in found and found["lnk"].refused({NB: None})
    assert not any(p.is_symlink() for p in tmp_path.rglob("*") if p.parent != solutions)


def test_paths_that_leave_the_archive_are_refused(tmp_path):
    path = export(
        tmp_path,
        {
            "../../evil.ipynb": HONEST,
            "/tmp/evil_abs.ipynb": HONEST,
            "ben/../../evil2.ipynb": HONEST,
            "C:\\evil3.ipynb": HONEST,
            f"ben/{NB}.ipynb": notebook("b"),
        },
    )
    found, unmatched, data = grab(path, tmp_path)
    assert set(found) == {"ana", "ben"} and honest_kept(found, data)
    assert data["ben"][NB] == notebook("b")
    assert sum("refused" in u for u in unmatched) == 4, unmatched
    assert not list(tmp_path.parent.rglob("evil*")) and not Path("/tmp/evil_abs.ipynb").exists()


def test_broken_encrypted_and_unsupported_archives_are_that_learners_reason(tmp_path):
    crc = bytearray(
        zip_bytes({f"{NB}.ipynb": notebook("y" * 5000)}, compression=zipfile.ZIP_STORED)
    )
    k = crc.index(b"y" * 100)
    crc[k : k + 5] = b"zzzzz"  # stored bytes changed: bad CRC
    found, _, data = grab(
        export(
            tmp_path,
            {
                "bad.zip": b"PK\x03\x04 this is not an archive",
                "crc.zip": bytes(crc),
                "bz.zip": zip_bytes({f"{NB}.ipynb": HONEST}, compression=zipfile.ZIP_BZIP2),
            },
        ),
        tmp_path,
    )
    assert set(found) == {"ana", "bad", "crc", "bz"} and honest_kept(found, data)
    assert "not a readable .zip" in reasons(found, "bad")
    assert "broken archive entry" in reasons(found, "crc") and "CRC" in reasons(found, "crc")
    assert "method 12" in reasons(found, "bz")
    assert all(data[x] == {NB: None} and found[x].refused(data[x]) for x in ("bad", "crc", "bz"))


def test_the_container_itself_is_a_clear_error(tmp_path):
    with pytest.raises(CollectError, match="no such file or folder"):
        open_submissions(tmp_path / "missing.zip", tmp_path / "s")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CollectError, match="not a folder or a readable .zip"):
        open_submissions(tmp_path / "notes.txt", tmp_path / "s")
    (tmp_path / "cut.zip").write_bytes(export(tmp_path, {}).read_bytes()[:-30])
    with pytest.raises(CollectError, match="not a folder or a readable .zip"):
        open_submissions(tmp_path / "cut.zip", tmp_path / "s")
    (tmp_path / "huge.zip").write_bytes(zip_bytes({f"{NB}.ipynb": b"\0" * (3 << 20)}))
    with pytest.raises(CollectError, match="more than the limit of 1,048,576"):
        open_submissions(tmp_path / "huge.zip", tmp_path / "s", Limits(max_bytes=1 << 20))
    with pytest.raises(CollectError, match="not a regular expression"):
        collect(tmp_path, [NB], regexp="(?P<student_id")


# --- names ----------------------------------------------------------------------------------


def test_korean_names_nfc_and_nfd_are_one_learner_and_two_names_are_two(tmp_path):
    kim_nfc, lee = "김민수", "이영희"
    kim_nfd = unicodedata.normalize("NFD", kim_nfc)
    assert kim_nfd != kim_nfc
    path = export(
        tmp_path,
        {
            f"{kim_nfc}/{NB}.ipynb": notebook("kim 1"),
            f"{kim_nfd}/{NB} (1).ipynb": notebook("kim 2"),
            f"{lee}/{NB}.ipynb": notebook("lee"),
        },
    )
    found, _, data = grab(path, tmp_path)
    assert set(found) == {"ana", kim_nfc, lee}
    assert honest_kept(found, data)
    assert "more than once" in reasons(found, kim_nfc)
    assert data[lee][NB] == notebook("lee")
    assert found[kim_nfc].folder != found[lee].folder != "unknown"
    assert found[kim_nfc].folder.startswith("learner--")
    no_merges(found)
    # the same on disk, a folder per learner
    make(tmp_path / "disk", {f"{kim_nfd}/{NB}.ipynb": HONEST, f"{lee}/{NB}.ipynb": HONEST})
    found, _, _ = grab(tmp_path / "disk", tmp_path)
    assert set(found) == {kim_nfc, lee}


def test_utf8_names_without_the_utf8_flag_as_macos_writes_them(tmp_path):
    nfd = unicodedata.normalize("NFD", "José Núñez")
    data = bytearray(zip_bytes({f"{nfd}/{NB}.ipynb": HONEST, f"ben/{NB}.ipynb": HONEST}))
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # clear bit 11 (UTF-8)
        i = data.find(sig)
        while i >= 0:
            flags = int.from_bytes(data[i + at : i + at + 2], "little") & ~0x800
            data[i + at : i + at + 2] = flags.to_bytes(2, "little")
            i = data.find(sig, i + 4)
    path = tmp_path / "mac.zip"
    path.write_bytes(bytes(data))
    assert "José" not in zipfile.ZipFile(path).namelist()[0]  # zipfile alone: cp437
    found, _, read = grab(path, tmp_path)
    assert set(found) == {"José Núñez", "ben"} and read["José Núñez"][NB] == HONEST


def test_a_notebook_over_the_size_limit_is_refused(tmp_path):
    make(tmp_path / "c", {f"ana/{NB}.ipynb": HONEST, f"big/{NB}.ipynb": b" " * 5000})
    (tmp_path / "c" / "bigz.zip").write_bytes(zip_bytes({f"{NB}.ipynb": b" " * 5000}))
    found, _, data = grab(tmp_path / "c", tmp_path, limits=Limits(max_notebook=len(HONEST)))
    assert honest_kept(found, data)
    for learner in ("big", "bigz"):
        assert data[learner] == {NB: None} and "more than the limit" in reasons(found, learner)


def test_long_names_spaces_newlines_emoji_and_bad_bytes_are_kept_and_folders_safe(tmp_path):
    long1, long2 = "A" * 299 + "1", "A" * 299 + "2"  # only an archive can hold these
    odd = [
        "Ana María López",
        "line\nbreak",
        "🎉 party",
        "semi;colon, comma",
        "-rf",
        "x..y",
        "CON",
        "Ana",
        "ana",
        "x--0123456789",
    ]
    path = export(tmp_path, {f"{n}/{NB}.ipynb": notebook(n) for n in [long1, long2, *odd]})
    found, _, data = grab(path, tmp_path)
    assert set(found) == {"ana", long1, long2, *odd}
    for n in [long1, long2, *odd]:
        assert data[n][NB] == notebook(n), n
    no_merges(found)
    assert found["ana"].folder != found["Ana"].folder
    assert found["ana"].folder.casefold() != found["Ana"].folder.casefold()
    assert len(found[long1].folder) <= 64 and found[long1].folder != found[long2].folder
    assert found["Ana María López"].folder.startswith("Ana_Maria_Lopez--")
    assert found["x--0123456789"].folder != "x--0123456789"  # a plain id never looks hashed
    # on disk, including a name that is not UTF-8
    make(tmp_path / "disk", {f"ana/{NB}.ipynb": HONEST, f"line\nbreak/{NB}.ipynb": HONEST})
    os.makedirs(os.path.join(os.fsencode(tmp_path / "disk"), b"b\xffd"))
    with open(
        os.path.join(os.fsencode(tmp_path / "disk"), b"b\xffd", NB.encode() + b".ipynb"), "wb"
    ) as f:
        f.write(HONEST)
    found, _, data = grab(tmp_path / "disk", tmp_path)
    assert set(found) == {"ana", "line\nbreak", "b\\xffd"}
    assert data["b\\xffd"][NB] == HONEST
    "".join(found).encode("utf-8")  # grades.csv can hold every id
    no_merges(found)


def test_student_ids_are_stable_bounded_and_never_collide():
    names = [
        "ana",
        "Ana",
        "ana ",
        " ana",
        "ana\n",
        "ana/",
        "ana*",
        "a" * 64,
        "a" * 65,
        "김민수",
        "이영희",
        unicodedata.normalize("NFD", "김민수"),
        "",
        ".",
        "..",
        "x--0123456789",
        "x--0123456789abcdef",
        "smith.john@uni.edu",
        "12345",
    ]
    ids = [student_id(n) for n in names]
    assert student_id("ana") == "ana" and student_id("12345") == "12345"
    assert student_id("smith.john@uni.edu") == "smith.john@uni.edu"
    assert student_id("김민수") == student_id("김민수")  # deterministic
    distinct = {n: i for n, i in zip(names, ids, strict=False)}
    assert len(set(distinct.values())) == len(distinct), distinct
    for i in ids:
        assert PLAIN_ID.fullmatch(i) or HASHED_ID.search(i)
        assert len(i) <= 64


@pytest.mark.parametrize(
    "name,learner,extra",
    [
        # Canvas: <sortable name>[_LATE]_<user id>_<attachment id>_<file>, and copies -1, -<uuid>
        (f"smithjohn_12345_67890_{NB}.ipynb", "smithjohn_12345", None),
        (f"smithjohn_LATE_12345_67891_{NB}-1.ipynb", "smithjohn_12345", "LATE"),
        (
            f"smithjohn_late_12345_67892_{NB}-3f2a9c1e-1b2c-4d5e-8f90-123456789abc.ipynb",
            "smithjohn_12345",
            "LATE",
        ),
        (f"anon_x7Yq2_67893_{NB}.ipynb", "anon_x7Yq2", None),
        (f"김민수_555_67894_{NB}.ipynb", "김민수_555", None),
        # Moodle: <full name>_<participant id>_assignsubmission_file_<file>
        (
            f"Ana María López_1234567_assignsubmission_file_{NB}.ipynb",
            "Ana María López_1234567",
            None,
        ),
        (f"Participant_7654321_assignsubmission_file_{NB} (2).ipynb", "Participant_7654321", None),
        # Blackboard: <assignment>_<user>_attempt_<timestamp>_<file>
        (f"Homework 1_jsmith_attempt_2016-01-30-15-00-00_{NB}.ipynb", "jsmith", "2016-01-30"),
        (
            f"{NB}_j.smith-2@uni_attempt_2016-01-30-15-00-00_{NB}-Copy1.ipynb",
            "j.smith-2@uni",
            "2016-01-30",
        ),
        # nbgrader's own example, and <learner>_<anything>_<notebook>
        (f"ps1_hacker_attempt_2016-01-30-20-30-10_{NB}.ipynb", "hacker", "2016-01-30"),
        (f"dan_upload-7_{NB} - Copy (2).ipynb", "dan", None),
        (f"eve_{NB} copy.ipynb", "eve", None),
        (f"fay_{NB} 2.IPYNB", "fay", None),
    ],
)
def test_platform_decorations_and_resubmission_suffixes(tmp_path, name, learner, extra):
    make(tmp_path / "c", {f"ana/{NB}.ipynb": HONEST, name: notebook(learner)})
    found, unmatched, data = grab(tmp_path / "c", tmp_path)
    assert set(found) == {"ana", learner} and not unmatched, (found.keys(), unmatched)
    assert data[learner][NB] == notebook(learner) and honest_kept(found, data)
    if extra == "LATE":
        assert "late" in reasons(found, learner)
    elif extra:
        assert found[learner].timestamp.startswith(extra)


def test_moodle_folders_and_onlinetext_are_one_learner_two_namesakes_are_two(tmp_path):
    make(
        tmp_path / "c",
        {
            f"Ana López_111_assignsubmission_file/{NB}.ipynb": HONEST,  # Moodle >= 3.1
            "Ana López_111_assignsubmission_onlinetext_/onlinetext.html": b"<p>hi</p>",
            f"Ana López_222_assignsubmission_file_/{NB}.ipynb": notebook("other"),  # a namesake
            "Bo Li_333_assignsubmission_onlinetext_/onlinetext.html": b"<p>no file</p>",
        },
    )
    found, _, data = grab(tmp_path / "c", tmp_path)
    assert set(found) == {"Ana López_111", "Ana López_222", "Bo Li_333"}
    assert data["Ana López_111"][NB] == HONEST and data["Ana López_222"][NB] == notebook("other")
    assert data["Bo Li_333"] == {NB: None}
    assert "no notebook handed in" in reasons(found, "Bo Li_333")
    no_merges(found)


def test_blackboard_attempts_latest_wins_and_underscored_users_stay_apart(tmp_path):
    a = "Homework_1"
    make(
        tmp_path / "c",
        {
            f"{a}_john_smith_attempt_2016-01-30-15-00-00_{NB}.ipynb": notebook("john old"),
            f"{a}_john_smith_attempt_2016-02-01-09-00-00_{NB}.ipynb": notebook("john new"),
            f"{a}_john_smith_attempt_2016-02-01-09-00-00.txt": b"Name: John Smith (john_smith)",
            f"{a}_jane_smith_attempt_2016-01-31-10-00-00_{NB}.ipynb": notebook("jane"),
            f"{a}_kim_attempt_2016-01-31-10-00-00_report.pdf": b"%PDF",
            f"{a}_kim_attempt_2016-01-31-10-00-00.txt": b"Name: Kim (kim)",
        },
    )
    found, _, data = grab(tmp_path / "c", tmp_path)
    assert set(found) == {"john_smith", "jane_smith", "kim"}, set(found)
    assert data["john_smith"][NB] == notebook("john new")
    assert found["john_smith"].timestamp == "2016-02-01 09:00:00"
    assert data["jane_smith"][NB] == notebook("jane")
    assert data["kim"] == {NB: None} and "no notebook handed in" in reasons(found, "kim")


def test_canvas_zip_uploads_and_pdf_only_learners_get_rows(tmp_path):
    path = export(
        tmp_path,
        {
            f"smithjohn_12345_999_{NB}.ipynb": notebook("john"),
            "doejane_222_1000_mywork.zip": zip_bytes({f"src/{NB}.ipynb": notebook("jane")}),
            "leeann_LATE_333_1001_essay.pdf": b"%PDF",
        },
    )
    found, _, data = grab(path, tmp_path)
    assert set(found) == {"ana", "smithjohn_12345", "doejane_222", "leeann_333"}, set(found)
    assert data["doejane_222"][NB] == notebook("jane")
    assert data["leeann_333"] == {NB: None} and "late" in reasons(found, "leeann_333")


def test_user_regexp_is_tried_first(tmp_path):
    make(tmp_path / "c", {f"sub-ana-{NB}.ipynb": HONEST, f"sub-김민수-{NB}.ipynb": notebook("k")})
    found, _, data = grab(
        tmp_path / "c", tmp_path, regexp=r"sub-(?P<student_id>[^-]+)-(?P<file_id>.+)\.ipynb"
    )
    assert set(found) == {"ana", "김민수"} and honest_kept(found, data)
    # nbgrader's documented example, with its timestamp group
    make(tmp_path / "bb", {f"ps1_hacker_attempt_2016-01-30-20-30-10_{NB}.ipynb": HONEST})
    found, _, data = grab(
        tmp_path / "bb",
        tmp_path,
        regexp=r".*_(?P<student_id>\w+)_attempt_"
        r"(?P<timestamp>[0-9\-]+)_(?P<file_id>\w+)",
    )
    assert set(found) == {"hacker"} and found["hacker"].timestamp == "2016-01-30 20:30:10"


# --- layouts ------------------------------------------------------------------------------------


def test_one_folder_on_top_is_the_class_not_a_learner(tmp_path):
    for top in ("class", "Spring 2025/section-a"):
        root = tmp_path / top.replace("/", "_")
        make(
            root / top,
            {
                f"ana/{NB}.ipynb": HONEST,
                f"ben/work/{NB}.ipynb": notebook("b"),
                "cleo/notes.txt": b"forgot",
                ".DS_Store": b"",
                f"__MACOSX/ana/._{NB}.ipynb": b"junk",
            },
        )
        archive = zip_r(tmp_path / f"{root.name}.zip", root, top.split("/")[0])
        for source in (root, archive):
            found, unmatched, data = grab(source, tmp_path)
            assert set(found) == {"ana", "ben", "cleo"}, (source, set(found))
            assert honest_kept(found, data) and data["ben"][NB] == notebook("b")
            assert found["cleo"].notes == ["no notebook handed in"] and not unmatched


def test_a_class_folder_of_flat_platform_files_inside_one_folder(tmp_path):
    make(
        tmp_path / "c" / "export",
        {f"ana_1_2_{NB}.ipynb": HONEST, f"ben_3_4_{NB}.ipynb": notebook("b")},
    )
    found, _, data = grab(tmp_path / "c", tmp_path)
    assert set(found) == {"ana_1", "ben_3"}
    make(tmp_path / "g" / "export", {f"ana_{NB}.ipynb": HONEST, f"ben_{NB}.ipynb": HONEST})
    found, _, data = grab(tmp_path / "g", tmp_path)
    assert set(found) == {"ana", "ben"}


def test_nbgraders_course_folder_gives_its_submitted_learners(tmp_path):
    secret = "0123456789abcdef" * 8  # nbgrader submit writes secrets.token_hex(64)
    course = make(
        tmp_path / "course",
        {
            f"source/{NB}/{NB}.ipynb": notebook("source"),
            f"release/{NB}/{NB}.ipynb": notebook("release"),
            f"autograded/ana/{NB}/{NB}.ipynb": notebook("autograded"),
            f"feedback/ana/{NB}/{NB}.html": b"<html>",
            "gradebook.db": b"",
            "nbgrader_config.py": b"",
            f"submitted/ana/{NB}/{NB}.ipynb": HONEST,
            f"submitted/ana/{NB}/timestamp.txt": b"2025-03-01 10:00:00.000000 UTC",
            f"submitted/ana/{NB}/submission_secret.txt": secret.encode(),
            "submitted/ana/04_affine_layer/04_affine_layer.ipynb": notebook("other assignment"),
            f"submitted/ben/{NB}/{NB}.ipynb": notebook("b"),
            f"submitted/ben/{NB}/timestamp.txt": b"not a time at all",
            f"submitted/ben/{NB}/submission_secret.txt": b"../../not a secret\n",
            f"submitted/cleo/{NB}/notes.txt": b"nothing",
        },
    )
    archive = zip_r(tmp_path / "course.zip", tmp_path, "course")
    for source in (course, archive, course / "submitted"):
        found, _, data = grab(source, tmp_path)
        assert set(found) == {"ana", "ben", "cleo"}, (source, set(found))
        assert honest_kept(found, data) and data["ben"][NB] == notebook("b")
        assert found["ana"].timestamp == "2025-03-01 10:00:00.000000 UTC"
        assert found["ben"].timestamp is None  # junk timestamps are ignored
        assert found["ana"].secret == secret  # for nbgrader release_feedback
        assert found["ben"].secret is None and found["cleo"].secret is None
        assert data["cleo"] == {NB: None}


def test_a_single_learner_folder_is_not_mistaken_for_a_class(tmp_path):
    make(tmp_path / "one", {f"ana/{NB}/{NB}.ipynb": HONEST, f"ana/{NB}/timestamp.txt": b"x"})
    found, _, data = grab(tmp_path / "one", tmp_path)
    assert set(found) == {"ana"} and honest_kept(found, data)
    make(tmp_path / "two", {f"ana/{NB}.ipynb": HONEST, "ana/data.csv": b"1"})
    found, _, data = grab(tmp_path / "two", tmp_path)
    assert set(found) == {"ana"} and honest_kept(found, data)


def test_a_folder_of_zips_one_per_learner(tmp_path):
    make(tmp_path / "c", {f"ana/{NB}.ipynb": HONEST})
    (tmp_path / "c" / "fay.zip").write_bytes(zip_bytes({f"{NB}.ipynb": notebook("fay")}))
    (tmp_path / "c" / "gus.ZIP").write_bytes(zip_bytes({f"gus/{NB}.ipynb": notebook("gus")}))
    found, _, data = grab(tmp_path / "c", tmp_path)
    assert set(found) == {"ana", "fay", "gus"} and honest_kept(found, data)
    assert data["fay"][NB] == notebook("fay") and data["gus"][NB] == notebook("gus")


# --- the batch, end to end ----------------------------------------------------------------------


def reference_submission() -> bytes:
    """The course's notebook answered with the solutions' code (full marks)."""
    release = nbformat.read(REPO / "course" / NB / f"{NB}.ipynb", as_version=4)
    sol = nbformat.read(REPO / "solutions" / NB / f"{NB}.ipynb", as_version=4)
    answers = {
        c.metadata.nbgrader["grade_id"]: "\n".join(
            line for line in c.source.split("\n") if "SOLUTION" not in line
        )
        for c in sol.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and gid in answers:
            cell.source = answers[gid]
    return nbformat.writes(nb).encode()


@pytest.mark.slow
@pytest.mark.skipif(
    not (REPO / "course" / NB / f"{NB}.ipynb").is_file()
    or not (REPO / "solutions" / NB / f"{NB}.ipynb").is_file(),
    reason=f"{NB} is not in course/ and solutions/",
)
def test_a_mixed_class_is_graded_one_row_per_learner(tmp_path):
    good = reference_submission()
    blank = (REPO / "course" / NB / f"{NB}.ipynb").read_bytes()
    solutions = REPO / "solutions" / NB / f"{NB}.ipynb"
    inner = {
        f"class/ana/{NB}.ipynb": good,  # honest
        f"class/김민수/{NB}.ipynb": good,  # Korean, NFC
        f"class/{unicodedata.normalize('NFD', '이영희')}/{NB} (1).ipynb": blank,  # NFD
        f"class/{'N' * 300}/{NB}.ipynb": good,  # 300 characters
        f"class/Ana López_111_assignsubmission_file_/{NB}.ipynb": good,  # Moodle folder
        f"class/smithjohn_LATE_12345_678_{NB}-1.ipynb": good,  # Canvas, flat
        f"class/HW1_jsmith_attempt_2016-01-30-15-00-00_{NB}.ipynb": good,  # Blackboard
        "class/nora/notes.txt": b"no notebook",  # nothing
        f"class/ivy/{NB}.ipynb": b"{not json",  # invalid
        "class/boris.zip": zip_bytes({f"{NB}.ipynb": b"\0" * (12 << 20)}),  # zip bomb
    }
    archive = tmp_path / "class.zip"
    archive.write_bytes(zip_bytes(inner, links={f"class/mallory/{NB}.ipynb": str(solutions)}))
    out = tmp_path / "out"
    cmd = [
        *grade_command(archive, NB, out),
        "--jobs",
        "2",
        "--timeout",
        "120",
        "--cell-timeout",
        "20",
    ]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    with open(out / "grades.csv", newline="") as f:
        rows = {r["learner"]: r for r in csv.DictReader(f)}
    expect = {  # learner -> (status, words in the reason, full marks?)
        "ana": ("graded", "", True),
        "김민수": ("graded", "", True),
        "이영희": ("graded", "", False),
        "N" * 300: ("graded", "", True),
        "Ana López_111": ("graded", "", True),
        "smithjohn_12345": ("graded", "late", True),
        "jsmith": ("graded", "", True),
        "nora": ("missing", "not handed in", False),
        "ivy": ("invalid", "invalid JSON", False),
        "boris": ("invalid", "zip bomb", False),
        "mallory": ("invalid", "symbolic link", False),
    }
    assert set(rows) == set(expect), set(rows) ^ set(expect)  # none lost, none merged
    for learner, (status, words, full) in expect.items():
        row = rows[learner]
        assert row["status"] == status, row
        assert words in row["reason"], row
        assert (float(row["score"]) == float(row["max_score"]) > 0) == full, row
    # the container itself broken: a message and exit status 2, no traceback
    for bad in (tmp_path / "missing.zip", tmp_path / "class"):
        if bad.name == "class":
            bad.write_text("not a zip")
        proc = subprocess.run(
            cmd[:4] + [str(bad)] + cmd[5:],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr and str(bad) in proc.stderr
