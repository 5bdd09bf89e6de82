"""``manage.py ensure_admin``: make sure an admin account exists and say how to log in."""

import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the admin account from DJANGO_SUPERUSER_USERNAME / DJANGO_SUPERUSER_PASSWORD, "
        "or 'admin' with a generated password (printed, and kept in DATA_DIR/admin-password.txt)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        saved = settings.DATA_DIR / "admin-password.txt"
        user = User.objects.filter(username=username).first()
        if user is None:
            if not password:
                password = secrets.token_urlsafe(12)
                saved.parent.mkdir(parents=True, exist_ok=True)
                saved.write_text(password + "\n")
                saved.chmod(0o600)
            User.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(f"Created admin account: {username} / {password}")
            return
        if password:
            if not user.check_password(password):
                user.set_password(password)
                user.save(update_fields=["password"])
            self.stdout.write(f"Admin account: {username} (password from DJANGO_SUPERUSER_PASSWORD)")
        elif saved.exists() and user.check_password(saved.read_text().strip()):
            self.stdout.write(f"Admin account: {username} / {saved.read_text().strip()}")
        else:
            self.stdout.write(
                f"Admin account: {username} (change its password with: manage.py changepassword {username})"
            )
