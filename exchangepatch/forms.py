"""Form helpers shared by the portal's pages."""

from django import forms


class PortalFilterSet:
    """Mixin for django-filter FilterSets: the form's widgets get Bootstrap's small control classes."""

    @property
    def form(self):
        form = super().form
        for field in form.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select form-select-sm"
            else:
                css = "form-control form-control-sm"
            widget.attrs.setdefault("class", css)
        return form


class InvalidFilterAnswers400:
    """Mixin for FilterViews: a filter or search that does not validate answers with the page, its message and 400."""

    def render_to_response(self, context, **kwargs):
        if self.filterset.is_bound and not self.filterset.is_valid():
            kwargs["status"] = 400
        return super().render_to_response(context, **kwargs)
