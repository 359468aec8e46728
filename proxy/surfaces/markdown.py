"""Markdown renderings the text-only protocols share: pure.

    canonical File / Source events -> file_markdown / sources_markdown -> content text

The Workbench and Chat Completions have no field for generated media, so a
File becomes a Markdown image (or link) in the answer's content, as the AI
Workbench example server streams its images.
"""
from __future__ import annotations


def file_markdown(media_type: str, url: str) -> str:
    if media_type.startswith("image/"):
        return f"![Generated image]({url})"
    return f"[Download file]({url})"


def sources_markdown(sources: list) -> str:
    lines = [f"{i}. [{source.title or source.url}]({source.url})" for i, source in enumerate(sources, 1)]
    return "\n\nSources:\n" + "\n".join(lines)
