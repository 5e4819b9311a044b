"""docs/SETTINGS.md, made from the settings themselves (a test keeps the file in step with the code)."""

from __future__ import annotations

from app.settings import GROUPS, SETTINGS

__all__ = ["settings_markdown"]


def settings_markdown() -> str:
    """The reference table of docs/SETTINGS.md (a test keeps the file in step with the code)."""
    lines = ["# Settings", "",
             "Resolved in this order, later wins: defaults < TOML file (`--config FILE` or `VIDEOQA_CONFIG`) "
             "< `VIDEOQA_*` environment < command line. `videoqa settings` prints the current values and "
             "where each came from. In a TOML file, give the names below at the top level or under `[videoqa]`; "
             "relative paths in the file are relative to the file.", "",
             "On the command line each subcommand takes the flags of the groups below that name it "
             "(`videoqa COMMAND --help` lists them); `videoqa settings` takes every flag, and `videoqa models` also "
             "those that choose a model (a role's backend, model and weights path). Any subcommand takes any "
             "setting as `--set NAME=VALUE`, repeatable and read like a `VIDEOQA_*` value: `--set "
             "answer_threshold=0.3` is `--answer-threshold 0.3`, and `videoqa search QUESTION --set "
             "describer_path=DIR` gives a setting that has no flag on `search` (with profile auto it decides "
             "whether the full profile's models are all found). An unknown name or a bad value is a one-line "
             "error naming the setting, and so is a setting given both by its flag and by `--set`. The general "
             "flags, `--config`, `--set` and `-v` may also come before the subcommand.", ""]
    for group, commands in GROUPS.items():
        takes = ", ".join(f"`{c}`" for c in commands if c != "settings")
        lines += ["", f"## {group}", "", f"Flags of: {takes}.", "",
                  "| name | flag | environment | default | meaning |", "|---|---|---|---|---|"]
        for s in (s for s in SETTINGS if s.group == group):
            default = "unset" if s.default is None else f"`{s.default}`"
            if s.name == "index_dir":
                default = "`$XDG_DATA_HOME/videoqa/index` (`~/.local/share/videoqa/index`)"
            elif s.name == "library_dir":
                default = "`$XDG_DATA_HOME/videoqa/library` (`~/.local/share/videoqa/library`)"
            elif s.name == "cache_dir":
                default = "`$XDG_CACHE_HOME/videoqa/models` (`~/.cache/videoqa/models`)"
            meaning = s.help + (f" One of: {', '.join(s.choices)}." if s.choices else "")
            lines.append(f"| `{s.name}` | `{s.flag}` | `{s.env}` | {default} | {meaning.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
