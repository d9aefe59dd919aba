from nicegui.testing import User

from perkflow.service.core import Service

from .conftest import sign_in


async def test_operator_creates_a_draft(user: User, svc: Service) -> None:
    await sign_in(user, "operator")
    await user.should_see("Drafts")
    user.find("New empty scheme").click()
    await user.should_see("General")
