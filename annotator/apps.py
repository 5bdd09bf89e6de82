"""App configuration."""

from django.apps import AppConfig


class AnnotatorConfig(AppConfig):
    name = "annotator"
    verbose_name = "Annotator"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from annotator import login_limits

        user_login_failed.connect(login_limits.on_login_failed, dispatch_uid="annotator-login-failed")
        user_logged_in.connect(login_limits.on_logged_in, dispatch_uid="annotator-logged-in")
