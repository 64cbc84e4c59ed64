"""Who is calling: a user id and a role, as a verified token states them."""

from dataclasses import dataclass

from cashup.core.enums import Role
from cashup.core.errors import Forbidden


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    role: Role

    def owner_filter(self) -> str | None:
        """The user id to restrict reads to, or ``None`` when the role reads everything."""
        return None if self.role.reads_everything else self.user_id

    def can_see(self, owner_id: str) -> bool:
        return self.role.reads_everything or owner_id == self.user_id

    def require_trading(self) -> None:
        if not self.role.can_trade:
            raise Forbidden(f"role {self.role} may not place or change orders", role=self.role.value)

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            allowed = ", ".join(role.value for role in roles)
            raise Forbidden(f"role {self.role} may not do this; allowed: {allowed}", role=self.role.value)
