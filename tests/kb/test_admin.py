"""The catalog admin: search by KB, build (any form) or name; filters; fix lists inline."""

import pytest
from django.contrib.auth import get_user_model

from kb.models import Product, Update


@pytest.fixture
def admin_client(client, loaded_catalog):
    user = get_user_model().objects.create_superuser("admin", password="invented-test-password")
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("KB2608656", "Exchange Server 2007 SP3 Update Rollup 6"),
        ("15.02.1544.009", "Exchange Server 2019 CU14 Mar24SU"),
        ("Version 15.2 (Build 1544.4)", "Exchange Server 2019 CU14"),
        ("Mar24SU", "Exchange Server 2019 CU13 Mar24SU"),
    ],
)
def test_update_search(admin_client, query, expected):
    response = admin_client.get("/admin/kb/update/", {"q": query})

    assert response.status_code == 200
    titles = [str(update) for update in response.context["cl"].result_list]
    assert expected in titles


@pytest.mark.django_db
def test_update_filters_by_product_and_kind(admin_client):
    product = Product.objects.get(key="2010")
    response = admin_client.get("/admin/kb/update/", {"product__id__exact": product.pk, "kind__exact": "RU"})

    results = list(response.context["cl"].queryset)
    assert results and all(u.product_id == product.pk and u.kind == "RU" for u in results)
    assert len(results) == Update.objects.filter(product=product, kind="RU").count()


@pytest.mark.django_db
def test_fix_list_is_inline_on_the_update(admin_client):
    update = Update.objects.get(kb="KB2685289")
    response = admin_client.get(f"/admin/kb/update/{update.pk}/change/")

    assert response.status_code == 200
    fixes = response.context["inline_admin_formsets"][0].formset
    assert sorted(form.instance.fix.kb for form in fixes.forms if form.instance.pk)[:2] == ["KB2510607", "KB2514700"]
    assert fixes.queryset.count() == 42  # the fixes of Exchange 2010 SP2 Update Rollup 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["/admin/inventory/server/", "/admin/inventory/site/", "/admin/inventory/cluster/", "/admin/inventory/waiver/",
     "/admin/inventory/maintenancewindow/", "/admin/inventory/scanrun/", "/admin/inventory/serverresult/",
     "/admin/inventory/change/", "/admin/kb/rule/", "/admin/kb/catalogconflict/"],
)  # fmt: skip
def test_portal_pages_render_for_the_demo_estate(admin_client, path):
    from django.core.management import call_command

    call_command("demo_load", verbosity=0)
    call_command("scan", "--as-of", "2024-06-01", verbosity=0)

    response = admin_client.get(path)

    assert response.status_code == 200
    assert response.context["cl"].result_count > 0


@pytest.mark.django_db
def test_server_list_shows_the_latest_state(admin_client):
    from django.core.management import call_command

    call_command("demo_load", verbosity=0)
    call_command("scan", "--as-of", "2024-06-01", verbosity=0)
    response = admin_client.get("/admin/inventory/server/", {"q": "mbx-ex19-02"})

    assert [row.latest_state for row in response.context["cl"].result_list] == ["excepted"]


def _rule_form(rule, **changes) -> dict:
    import json

    values = {
        "key": rule.key, "kind": rule.kind, "products": json.dumps(rule.products), "description": rule.description,
        "data": json.dumps(rule.data), "source_title": rule.source_title, "source_url": rule.source_url,
        "source_document": rule.source_document, "source_date": rule.source_date or "", "is_practice": rule.is_practice,
        "is_enabled": rule.is_enabled,
    }  # fmt: skip
    values.update(changes)
    return {key: value for key, value in values.items() if value is not False}


@pytest.mark.django_db
def test_an_operator_edits_a_runbook_and_catalog_load_keeps_it(admin_client):
    import json

    from django.core.management import call_command

    from kb.models import Rule

    rule = Rule.objects.get(key="runbook.2010.dag")
    data = rule.data | {"steps": [*rule.data["steps"], {"id": "backup", "kind": "verify", "scope": "node", "when": "after",
                                                        "description": "A backup of {server} ran", "command": None}]}  # fmt: skip

    response = admin_client.post(f"/admin/kb/rule/{rule.pk}/change/", _rule_form(rule, data=json.dumps(data)))
    call_command("catalog_load", verbosity=0)

    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.is_operator_edited and rule.data["steps"][-1]["id"] == "backup"


@pytest.mark.django_db
def test_a_runbook_the_planner_cannot_read_is_refused_in_the_admin_and_nothing_is_saved(admin_client):
    import json

    from kb.models import Rule

    rule = Rule.objects.get(key="runbook.2010.dag")
    before = rule.data
    data = rule.data | {"steps": [{"id": "x", "kind": "gate", "scope": "node", "when": "before",
                                   "description": "check {servr}", "command": None}]}  # fmt: skip

    response = admin_client.post(f"/admin/kb/rule/{rule.pk}/change/", _rule_form(rule, data=json.dumps(data)))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["data"] == [
        "rule runbook.2010.dag: steps[0]: unknown placeholder(s) servr (known: server, fqdn, cluster, cms, target, "
        "active, source, standby, other, update, build, site, license_switch, old_license_switch)"
    ]
    rule.refresh_from_db()
    assert rule.data == before and not rule.is_operator_edited
