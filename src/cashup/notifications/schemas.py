"""Request and response bodies of the notifications API."""

import re
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cashup.core.enums import OrderStatus
from cashup.notifications.channels import ChannelName
from cashup.notifications.matching import EVENT_PATTERN

EventType = Annotated[str, Field(min_length=1, max_length=64, pattern=EVENT_PATTERN.pattern,
                                 description="an event type (`order.filled`), a family (`order.*`) or `*`")]
Target = Annotated[str, Field(min_length=1, max_length=512, description=(
    "webhook: an http(s) URL; telegram: a chat id; email: an address; wxpusher: a UID; pushplus: a token"))]

_TARGET_RULES: dict[ChannelName, tuple[re.Pattern[str], str]] = {
    ChannelName.TELEGRAM: (re.compile(r"^(-?\d{1,20}|@[A-Za-z0-9_]{5,32})$"), "a numeric chat id or @channel"),
    ChannelName.EMAIL: (re.compile(r"^[^@\s<>,;]{1,64}@[^@\s<>,;]+\.[^@\s<>,;]+$"), "an e-mail address"),
    ChannelName.WXPUSHER: (re.compile(r"^[A-Za-z0-9_\-]{1,128}$"), "a WXPusher UID"),
    ChannelName.PUSHPLUS: (re.compile(r"^[A-Za-z0-9_\-]{8,128}$"), "a PushPlus token"),
}


def check_target(channel: ChannelName, target: str) -> str:
    """The target in the shape its channel needs, or ``ValueError`` saying which shape."""
    if channel is ChannelName.WEBHOOK:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("a webhook target must be an http:// or https:// URL with a host")
        return target
    pattern, shape = _TARGET_RULES[channel]
    if not pattern.match(target):
        raise ValueError(f"a {channel.value} target must be {shape}")
    return target


class SubscriptionCreate(BaseModel):
    """A wish to hear of some events: by default every order event, in any status."""

    model_config = ConfigDict(extra="forbid")

    channel: ChannelName
    target: Target
    events: list[EventType] = Field(default_factory=lambda: ["order.*"], min_length=1, max_length=32)
    statuses: list[OrderStatus] = Field(default_factory=list, max_length=16,
                                        description="order statuses to hear of; empty: every status")

    @field_validator("target")
    @classmethod
    def _target_fits_channel(cls, target: str, info: ValidationInfo) -> str:
        channel = info.data.get("channel")
        return check_target(channel, target) if isinstance(channel, ChannelName) else target


class SubscriptionPatch(BaseModel):
    """Change a subscription; fields left out stay. ``enabled: true`` re-enables one disabled after failures."""

    model_config = ConfigDict(extra="forbid")

    target: Target | None = None
    events: list[EventType] | None = Field(default=None, min_length=1, max_length=32)
    statuses: list[OrderStatus] | None = Field(default=None, max_length=16)
    enabled: bool | None = None

    @field_validator("target", "events", "statuses", "enabled", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class SubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    user_id: str
    channel: ChannelName
    target: str
    events: list[str] = Field(validation_alias="event_types")
    statuses: list[str]
    enabled: bool
    consecutive_failures: int
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str | None = Field(description="the webhook signing secret: shown now and never again")


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    subscription_id: UUID
    user_id: str
    channel: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    history: list[AttemptOut] = Field(default_factory=list, description="every attempt, first first")


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000, description="a Jinja2 template; names `event`, `data`, `order`")


class TemplateOut(BaseModel):
    event_type: str
    text: str
    is_default: bool
    updated_at: datetime | None = None
    updated_by: str | None = None
