"""Users as managers look for them: suggestions by name, username or email as they type, a user named
by username or email address, and who may search at all."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import Q

from annotator.models import Membership

#: The most suggestions one search returns.
SUGGESTIONS = 10


def user_can_search_users(*, user: User) -> bool:
    """Admins, and managers of at least one project (who add members)."""
    return user.is_superuser or Membership.objects.filter(user=user, role=Membership.Role.MANAGER).exists()


def user_search(*, query: str, limit: int = SUGGESTIONS) -> list[User]:
    """Active users whose username, first or last name or email starts with ``query`` (any case),
    usernames first in order; nothing for an empty query."""
    query = query.strip()
    if not query:
        return []
    words = Q(username__istartswith=query) | Q(email__istartswith=query)
    words |= Q(first_name__istartswith=query) | Q(last_name__istartswith=query)
    return list(User.objects.filter(words, is_active=True).order_by("username")[:limit])


def user_find(*, text: str) -> User | None:
    """The one user ``text`` names: the exact username, else the username in any case, else the only
    user with that email address; ``None`` when there is none, or several."""
    text = text.strip()
    if not text:
        return None
    for lookup in ({"username": text}, {"username__iexact": text}, {"email__iexact": text}):
        found = list(User.objects.filter(**lookup)[:2])
        if len(found) == 1:
            return found[0]
        if found:
            return None
    return None


def users_with_email(*, email: str) -> list[User]:
    """Every user whose email address is ``email`` (any case), at most two (one is the answer; two, ambiguous)."""
    return list(User.objects.filter(email__iexact=email.strip())[:2])
