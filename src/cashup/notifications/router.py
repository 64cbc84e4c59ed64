"""HTTP routes of the notifications slice: subscriptions, deliveries, templates."""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Response

from cashup.api.deps import CurrentPrincipal, RuntimeDep, SessionDep
from cashup.api.errors import BODY, READ, errors
from cashup.api.routes import StrictQueryRoute
from cashup.notifications.matching import EVENT_PATTERN
from cashup.notifications.schemas import (
    DeliveryOut,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionOut,
    SubscriptionPatch,
    TemplateIn,
    TemplateOut,
)
from cashup.notifications.service import Deliveries, Subscriptions, Templates

router = APIRouter(prefix="/notifications", tags=["notifications"], route_class=StrictQueryRoute)


async def subscriptions(runtime: RuntimeDep, session: SessionDep) -> Subscriptions:
    return Subscriptions(session, runtime.clock, list(runtime.notifications.channels))


async def templates_service(runtime: RuntimeDep, session: SessionDep) -> Templates:
    return Templates(session, runtime.clock)


SubscriptionsDep = Annotated[Subscriptions, Depends(subscriptions)]
TemplatesDep = Annotated[Templates, Depends(templates_service)]
EventTypePath = Annotated[str, Path(min_length=1, max_length=64, pattern=EVENT_PATTERN.pattern,
                                    description="an event type, a family (`order.*`) or `*` (the fallback)")]


def _out(row: object) -> SubscriptionOut:
    return SubscriptionOut.model_validate(row, from_attributes=True)


@router.post("/subscriptions", status_code=201, response_model=SubscriptionCreated, responses=errors(*READ, *BODY))
async def create_subscription(body: SubscriptionCreate, principal: CurrentPrincipal,
                              service: SubscriptionsDep) -> SubscriptionCreated:
    """Subscribe to events on a channel; a webhook's signing secret is in this answer only."""
    row = await service.create(principal, body)
    return SubscriptionCreated.model_validate(row, from_attributes=True)


@router.get("/subscriptions", response_model=list[SubscriptionOut], responses=errors(*READ))
async def list_subscriptions(principal: CurrentPrincipal, service: SubscriptionsDep) -> list[SubscriptionOut]:
    """The caller's subscriptions (admin and risk: everyone's)."""
    return [_out(row) for row in await service.list(principal)]


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionOut, responses=errors(*READ, 404))
async def get_subscription(subscription_id: UUID, principal: CurrentPrincipal,
                           service: SubscriptionsDep) -> SubscriptionOut:
    """One subscription of the caller's."""
    return _out(await service.get(principal, subscription_id))


@router.patch("/subscriptions/{subscription_id}", response_model=SubscriptionOut,
              responses=errors(*READ, *BODY, 404))
async def patch_subscription(subscription_id: UUID, body: SubscriptionPatch, principal: CurrentPrincipal,
                             service: SubscriptionsDep) -> SubscriptionOut:
    """Change target, events, statuses, or enable / disable a subscription."""
    return _out(await service.patch(principal, subscription_id, body))


@router.delete("/subscriptions/{subscription_id}", status_code=204, response_class=Response,
               responses=errors(*READ, 404))
async def delete_subscription(subscription_id: UUID, principal: CurrentPrincipal,
                              service: SubscriptionsDep) -> Response:
    """Remove a subscription and its delivery history."""
    await service.delete(principal, subscription_id)
    return Response(status_code=204)


@router.get("/deliveries", response_model=list[DeliveryOut], responses=errors(*READ))
async def list_deliveries(
    principal: CurrentPrincipal,
    session: SessionDep,
    subscription_id: UUID | None = None,
    status: Literal["pending", "sent", "failed", "skipped"] | None = None,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
    event_id: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[UUID | None, Query(description="deliveries older than this id (the next page)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    """Deliveries, newest first, each with every attempt and its result (the caller's; admin and risk: all)."""
    return await Deliveries(session).list(principal, subscription_id=subscription_id, status=status,
                                          event_type=event_type, event_id=event_id, before=before, limit=limit)


@router.get("/templates", response_model=list[TemplateOut], responses=errors(*READ))
async def list_templates(_: CurrentPrincipal, service: TemplatesDep) -> list[TemplateOut]:
    """The message template of each event type: an admin's, or the built-in default."""
    return await service.list()


@router.get("/templates/{event_type}", response_model=TemplateOut, responses=errors(*READ))
async def get_template(event_type: EventTypePath, _: CurrentPrincipal, service: TemplatesDep) -> TemplateOut:
    """The template used for one event type."""
    return await service.get(event_type)


@router.put("/templates/{event_type}", response_model=TemplateOut, responses=errors(*READ, *BODY, 403))
async def put_template(event_type: EventTypePath, body: TemplateIn, principal: CurrentPrincipal,
                       service: TemplatesDep) -> TemplateOut:
    """Replace the text for one event type (admin); refused with 422 unless it parses and renders a sample."""
    return await service.put(principal, event_type, body.text)


@router.delete("/templates/{event_type}", response_model=TemplateOut, responses=errors(*READ, 403))
async def reset_template(event_type: EventTypePath, principal: CurrentPrincipal,
                         service: TemplatesDep) -> TemplateOut:
    """Go back to the built-in text for one event type (admin)."""
    return await service.reset(principal, event_type)
