"""HTTP routes of venue accounts: register (admin), list, read, rotate keys or disable (admin), set leverage."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status

from cashup.accounts.schemas import AccountCreate, AccountList, AccountOut, AccountUpdate, LeverageIn, LeverageOut
from cashup.accounts.venue_accounts import AccountService, account_out
from cashup.api.deps import CurrentPrincipal, RuntimeDep, SessionDep
from cashup.api.errors import BODY, READ, errors
from cashup.api.routes import StrictQueryRoute

router = APIRouter(tags=["accounts"], route_class=StrictQueryRoute)


def get_account_service(runtime: RuntimeDep, session: SessionDep) -> AccountService:
    return AccountService(session, runtime.venue_accounts)


AccountServiceDep = Annotated[AccountService, Depends(get_account_service)]


@router.post("/accounts", responses=errors(*READ, *BODY, 403, 404, 409), response_model=AccountOut,
             status_code=status.HTTP_201_CREATED)
async def create_account(body: AccountCreate, principal: CurrentPrincipal, service: AccountServiceDep) -> AccountOut:
    """Register a Binance or Gate.io account with its API keys (admin); the keys are stored encrypted."""
    return account_out(await service.create(principal, body))


@router.get("/accounts", responses=errors(*READ), response_model=AccountList)
async def list_accounts(principal: CurrentPrincipal, service: AccountServiceDep) -> AccountList:
    """The caller's accounts (admin and risk: every account)."""
    return AccountList(accounts=[account_out(row) for row in await service.list(principal)])


@router.get("/accounts/{account_id:uuid}", responses=errors(*READ, 404), response_model=AccountOut)
async def get_account(account_id: UUID, principal: CurrentPrincipal, service: AccountServiceDep) -> AccountOut:
    """One account, without its keys."""
    return account_out(await service.get(principal, account_id))


@router.patch("/accounts/{account_id:uuid}", responses=errors(*READ, *BODY, 403, 404, 409), response_model=AccountOut)
async def update_account(
    account_id: UUID, body: AccountUpdate, principal: CurrentPrincipal, service: AccountServiceDep
) -> AccountOut:
    """Rotate keys, disable or re-enable, relabel or repoint an account (admin)."""
    return account_out(await service.update(principal, account_id, body))


@router.put("/accounts/{account_id:uuid}/leverage", responses=errors(*READ, *BODY, 403, 404, 409),
            response_model=LeverageOut)
async def put_leverage(
    account_id: UUID, body: LeverageIn, principal: CurrentPrincipal, service: AccountServiceDep
) -> LeverageOut:
    """Leverage and margin mode of one contract on a Gate.io futures account."""
    return await service.set_leverage(principal, account_id, body)
