"""The write policy: the Studio removes, renames over or replaces only what it created."""

import os

import pytest

from engine.errors import InputError
from engine.settings import Settings
from engine.write_policy import (
    UnsafeWriteError,
    check_export_target,
    in_data_dir,
    is_studio_export,
    move,
    publish_file,
    publish_folder,
    remove_file,
    remove_tree,
)


@pytest.fixture
def dirs(tmp_path):
    data, user = tmp_path / "data", tmp_path / "user"
    data.mkdir()
    user.mkdir()
    return Settings(data_dir=data, shared_data_dir=tmp_path), user


def test_inside_the_data_dir_is_judged_by_name_not_by_a_trick(dirs):
    settings, user = dirs
    assert in_data_dir(settings.data_dir / "kb" / "x", settings)
    assert not in_data_dir(settings.data_dir, settings)  # the data dir itself is never removed whole
    assert not in_data_dir(settings.data_dir / ".." / "user", settings)
    assert not in_data_dir(user, settings)


def test_nothing_outside_the_data_dir_is_removed_or_moved(dirs):
    settings, user = dirs
    (user / "notes.txt").write_text("mine")
    for call in (lambda: remove_tree(user, settings), lambda: remove_file(user / "notes.txt", settings)):
        with pytest.raises(UnsafeWriteError, match="the Studio did not create it"):
            call()
    with pytest.raises(UnsafeWriteError, match="both must lie inside"):
        move(user / "notes.txt", settings.data_dir / "stolen.txt", settings)
    assert (user / "notes.txt").read_text() == "mine"


def test_a_link_in_the_data_dir_is_removed_never_what_it_points_to(dirs):
    settings, user = dirs
    (user / "notes.txt").write_text("mine")
    link = settings.data_dir / "cache"
    link.symlink_to(user, target_is_directory=True)
    assert remove_tree(link, settings)
    assert not os.path.lexists(link) and (user / "notes.txt").read_text() == "mine"


def test_inside_the_data_dir_folders_are_removed_and_moved(dirs):
    settings, _ = dirs
    folder = settings.data_dir / "datasets" / "a"
    folder.mkdir(parents=True)
    (folder / "x.jsonl").write_text("{}")
    moved = move(folder, folder.with_name("b"), settings)
    with pytest.raises(InputError, match="already exists"):
        move(moved, moved, settings)
    assert remove_tree(moved, settings) and not moved.exists()
    assert remove_tree(moved, settings) is False  # nothing there is not an error


def test_an_export_file_is_marked_and_replaced_only_while_unchanged(dirs):
    _, user = dirs
    target = user / "out.jsonl"
    publish_file(target, "one\n")
    assert is_studio_export(target)
    with pytest.raises(InputError, match="already exists"):
        publish_file(target, "two\n")
    publish_file(target, "two\n", overwrite=True)
    assert target.read_text() == "two\n"
    target.write_text("edited by the user\n")  # now the user's
    assert not is_studio_export(target)
    with pytest.raises(UnsafeWriteError, match="not an unchanged export"):
        publish_file(target, "three\n", overwrite=True)
    assert target.read_text() == "edited by the user\n"


def test_an_export_folder_lists_its_files_and_a_new_file_makes_it_the_users(dirs):
    settings, user = dirs
    target = user / "export"

    def build(folder):
        folder.mkdir()
        (folder / "data.txt").write_text("rows")

    publish_folder(target, build)
    assert is_studio_export(target)
    publish_folder(target, build, overwrite=True)
    (target / "mine.txt").write_text("mine")
    assert not is_studio_export(target)
    with pytest.raises(UnsafeWriteError):
        publish_folder(target, build, overwrite=True)
    with pytest.raises(UnsafeWriteError):
        remove_tree(target, settings)
    assert (target / "mine.txt").read_text() == "mine"
    assert sorted(p.name for p in user.iterdir()) == ["export"]  # no scratch folders left beside it


def test_a_failed_build_leaves_the_earlier_export_and_no_scratch(dirs):
    _, user = dirs
    target = user / "export"
    publish_folder(target, lambda f: (f.mkdir(), (f / "a.txt").write_text("first")))

    def broken(folder):
        folder.mkdir()
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        publish_folder(target, broken, overwrite=True)
    assert (target / "a.txt").read_text() == "first" and is_studio_export(target)
    assert sorted(p.name for p in user.iterdir()) == ["export"]


def test_an_empty_folder_is_free_and_a_link_is_never_an_export(dirs):
    _, user = dirs
    (user / "empty").mkdir()
    assert check_export_target(user / "empty") == user / "empty"
    (user / "real.txt").write_text("mine")
    (user / "link.txt").symlink_to(user / "real.txt")
    assert not is_studio_export(user / "link.txt")
    with pytest.raises(UnsafeWriteError):
        check_export_target(user / "link.txt", overwrite=True)
