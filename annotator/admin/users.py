"""Django's user admin, with each user's project memberships on their page."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from annotator.models import Membership

User = get_user_model()


class UserMembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    extra = 0
    autocomplete_fields = ["project"]
    verbose_name_plural = "project memberships"


admin.site.unregister(User)


@admin.register(User)
class AnnotatorUserAdmin(UserAdmin):
    """Django's user admin with the user's project memberships on their page."""

    inlines = [*UserAdmin.inlines, UserMembershipInline]
