"""Shared pieces of what the bot shows: post titles and paths."""

from typing import Protocol

from bot.i18n import Raw, t


class NamedPost(Protocol):
    """A post as the domain gives it (``PostView``, ``PostRef``)."""

    @property
    def level(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def path(self) -> str: ...


def post_title(level: str, role: str) -> str:
    """e.g. 单元长 / unit lead, 物业信息员 / property officer."""
    return t(f"post.{level}.{role}")


def describe_post(post: NamedPost) -> Raw:
    """The post as HTML, ready to go into another text."""
    return Raw(t("post.described", title=post_title(post.level, post.role), path=post.path))


def post_button_text(post: NamedPost) -> str:
    """Button labels are plain text, not HTML."""
    return f"{post_title(post.level, post.role)} · {post.path}"
