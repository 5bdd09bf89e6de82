"""``manage.py import_images --project ID PATH``: import a server folder (class subfolders bring labels)."""

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotator.models import Project
from annotator.services.errors import ServiceError
from annotator.services.imports import items_import_folder


class Command(BaseCommand):
    help = "Import the images in a folder; files inside subfolders named after classes are labeled."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", type=int, required=True, help="Project id.")
        parser.add_argument("--user", help="Username recorded as the importer (default: none).")
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(id=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with id {options['project']}.")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user {options['user']!r}.")
        try:
            summary = items_import_folder(project=project, root=options["path"], user=user)
        except ServiceError as exc:
            raise CommandError(str(exc)) from exc
        for rejected in summary.rejected:
            self.stderr.write(f"rejected {rejected['name']}: {rejected['error']}")
        self.stdout.write(
            f"imported {summary.imported} ({summary.labeled} labeled), "
            f"duplicates {summary.duplicates}, rejected {len(summary.rejected)}"
        )
