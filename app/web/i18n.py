"""The web UI's words in English and Chinese."""

from __future__ import annotations

__all__ = ["STRINGS", "LANGUAGES", "text", "language_of"]

LANGUAGES = ("en", "zh")

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "title": "videoqa",
        "intro": "Ask a question about the videos in the library. Answers cite the video and the moment.",
        "tab_ask": "Ask", "tab_library": "Library", "tab_status": "Status",
        "question": "Question", "question_placeholder": "e.g. what happens during an eruption?", "ask": "Ask",
        "empty_question": "Type a question first.",
        "searching": "Searching…", "writing": "Writing an answer from {name}…",
        "nothing": "Nothing in the library answers this question.", "closest": "The closest moments:",
        "no_match": "No video matched.", "whole_video": "No single moment matched; the video matched as a whole.",
        "score": "score", "candidates": "Candidates", "error": "Error", "unexpected": "Something went wrong; "
        "the server log has the details.",
        "upload": "Add videos (upload)", "folder": "Or index a folder on the server", "folder_placeholder":
        "/path/to/videos", "index_folder": "Index folder", "refresh": "Refresh", "select_video": "Video",
        "reindex": "Index again", "remove": "Remove from the index", "progress": "Progress",
        "col_thumb": "", "col_name": "Name", "col_duration": "Length", "col_language": "Language",
        "col_status": "Status", "col_error": "Error", "col_where": "Folder",
        "indexed": "indexed", "failed": "failed", "skipped": "skipped",
        "library_empty": "The library is empty: upload videos or index a folder.",
        "done": "Done: {indexed} indexed, {skipped} skipped, {failed} failed.",
        "working": "{done}/{total} {name}: {status}", "no_folder": "No such folder on the server: {path}",
        "too_big": "{name} is larger than the {mb} MB limit.", "not_video": "{name} is not a video file.",
        "removed": "Removed {name} from the index.", "pick_video": "Pick a video first.",
        "profile": "Profile", "role": "Role", "backend": "Backend", "model": "Model", "where": "Found in",
        "loaded": "Loaded", "missing": "missing",
    },
    "zh": {
        "title": "videoqa",
        "intro": "就视频库中的视频提问。答案会注明出自哪个视频、哪一时刻。",
        "tab_ask": "提问", "tab_library": "视频库", "tab_status": "状态",
        "question": "问题", "question_placeholder": "例如：火山喷发时会发生什么？", "ask": "提问",
        "empty_question": "请先输入问题。",
        "searching": "正在检索…", "writing": "正在根据 {name} 生成答案…",
        "nothing": "视频库中没有能回答这个问题的内容。", "closest": "最接近的时刻：",
        "no_match": "没有匹配的视频。", "whole_video": "没有单个时刻匹配，整段视频匹配。",
        "score": "得分", "candidates": "候选答案", "error": "错误", "unexpected": "出错了，详情见服务器日志。",
        "upload": "添加视频（上传）", "folder": "或索引服务器上的文件夹", "folder_placeholder": "/视频/所在/路径",
        "index_folder": "索引文件夹", "refresh": "刷新", "select_video": "视频", "reindex": "重新索引",
        "remove": "从索引中移除", "progress": "进度",
        "col_thumb": "", "col_name": "名称", "col_duration": "时长", "col_language": "语言",
        "col_status": "状态", "col_error": "错误", "col_where": "文件夹",
        "indexed": "已索引", "failed": "失败", "skipped": "已跳过",
        "library_empty": "视频库为空：请上传视频或索引一个文件夹。",
        "done": "完成：已索引 {indexed} 个，跳过 {skipped} 个，失败 {failed} 个。",
        "working": "{done}/{total} {name}：{status}", "no_folder": "服务器上没有这个文件夹：{path}",
        "too_big": "{name} 超过 {mb} MB 的上限。", "not_video": "{name} 不是视频文件。",
        "removed": "已将 {name} 从索引中移除。", "pick_video": "请先选择一个视频。",
        "profile": "配置", "role": "角色", "backend": "后端", "model": "模型", "where": "位置",
        "loaded": "已加载", "missing": "缺失",
    },
}


def language_of(setting: str, accept_language: str | None) -> str:
    """``en`` or ``zh``: the setting, or with ``auto`` the browser's first choice."""
    if setting in LANGUAGES:
        return setting
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()
        if code.startswith("zh"):
            return "zh"
        if code.startswith("en"):
            return "en"
    return "en"


def text(lang: str, key: str, **values: object) -> str:
    s = STRINGS.get(lang, STRINGS["en"]).get(key) or STRINGS["en"][key]
    return s.format(**values) if values else s
