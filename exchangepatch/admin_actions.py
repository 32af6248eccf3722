"""An admin action for every list: export the selected rows as CSV, with the columns the list shows."""

import csv

from django.contrib import admin
from django.contrib.admin.utils import display_for_field, display_for_value, label_for_field, lookup_field
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpResponse
from django.utils.html import strip_tags


@admin.action(description="Export selected as CSV")
def export_as_csv(modeladmin, request, queryset):
    names = [name for name in modeladmin.get_list_display(request) if name != "action_checkbox"]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{modeladmin.model._meta.model_name}.csv"'
    writer = csv.writer(response)
    writer.writerow([strip_tags(str(label_for_field(name, modeladmin.model, modeladmin))) for name in names])
    for obj in queryset:
        writer.writerow([_cell(name, obj, modeladmin) for name in names])
    return response


def _cell(name, obj, modeladmin) -> str:
    try:
        field, attr, value = lookup_field(name, obj, modeladmin)
    except (AttributeError, ObjectDoesNotExist):
        return ""
    if field is not None and not field.is_relation:
        text = display_for_field(value, field, "")
    else:
        text = display_for_value(value, "", boolean=getattr(attr, "boolean", False))
    return strip_tags(str(text))
