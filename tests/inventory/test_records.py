"""server_record_from_mapping: normalised values for valid input, one field-keyed error per problem; no database.

Every server name and domain below is invented (.example domains); the builds are real Exchange builds.
"""

from datetime import UTC, datetime

import pytest

from inventory.records import ServerRecord, server_record_from_mapping
from kb.engine.builds import Build

ROLES_ERROR = "is not an Exchange role (Mailbox, ClientAccess, HubTransport, EdgeTransport, UnifiedMessaging)"
PREREQUISITES = "filter_pack, ucma, vcredist_2012, vcredist_2013, url_rewrite"


@pytest.mark.parametrize(
    ("_case", "data", "fqdn", "values"),
    [
        ("fqdn only, lower-cased, trailing dot dropped", {"fqdn": " MBX01.Contoso.Example. "}, "mbx01.contoso.example", {}),
        ("roles as Get-ExchangeServer prints them", {"fqdn": "mbx01.contoso.example", "roles": "Mailbox, ClientAccess, HubTransport"}, "mbx01.contoso.example", {"roles": "Mailbox,ClientAccess,HubTransport"}),
        ("roles in any order and case, aliases, semicolons", {"fqdn": "mbx01.contoso.example", "roles": "hub transport; CAS;mailbox"}, "mbx01.contoso.example", {"roles": "Mailbox,ClientAccess,HubTransport"}),
        ("roles as a list, duplicates and blanks ignored", {"fqdn": "edge01.contoso.example", "roles": ["EdgeTransport", "edge", " "]}, "edge01.contoso.example", {"roles": "EdgeTransport"}),
        ("short build", {"fqdn": "mbx01.contoso.example", "build": "15.2.1544.4"}, "mbx01.contoso.example", {"reported_build": "15.2.1544.4", "build_source": "exsetup", "build": Build(15, 2, 1544, 4)}),
        ("long ExSetup build", {"fqdn": "mbx01.contoso.example", "build": "15.02.1544.004"}, "mbx01.contoso.example", {"reported_build": "15.02.1544.004", "build_source": "exsetup", "build": Build(15, 2, 1544, 4)}),
        ("AdminDisplayVersion build", {"fqdn": "mbx01.contoso.example", "build": " Version 14.3 (Build 123.4) "}, "mbx01.contoso.example", {"reported_build": "Version 14.3 (Build 123.4)", "build_source": "admin_display", "build": Build(14, 3, 123, 4)}),
        ("build with an explicit source", {"fqdn": "mbx01.contoso.example", "build": "16.0.1.1", "build_source": "manual"}, "mbx01.contoso.example", {"reported_build": "16.0.1.1", "build_source": "manual", "build": Build(16, 0, 1, 1)}),
        ("empty build clears it", {"fqdn": "mbx01.contoso.example", "build": ""}, "mbx01.contoso.example", {"reported_build": "", "build_source": "manual", "build": None}),
        ("dotnet, prerequisites (empty ones dropped, sorted), forefront as text", {"fqdn": "mbx01.contoso.example", "dotnet_version": "4.7.2", "prerequisites": {"vcredist_2013": "2013", "filter_pack": " 2010 SP1 ", "ucma": ""}, "is_forefront_installed": "Yes"}, "mbx01.contoso.example", {"dotnet_version": "4.7.2", "prerequisites": {"filter_pack": "2010 SP1", "vcredist_2013": "2013"}, "is_forefront_installed": True}),
        ("booleans as booleans and empty text", {"fqdn": "mbx01.contoso.example", "is_forefront_installed": False, "site_is_internet_facing": ""}, "mbx01.contoso.example", {"is_forefront_installed": False, "site_is_internet_facing": False}),
        ("tags as text: split, stripped, deduplicated, sorted", {"fqdn": "mbx01.contoso.example", "tags": "production; eu, production"}, "mbx01.contoso.example", {"tags": ["eu", "production"]}),
        ("cluster with kind and role normalised", {"fqdn": "mbx01.contoso.example", "cluster": "DAG-EU", "cluster_kind": "dag", "cluster_role": "Active"}, "mbx01.contoso.example", {"cluster": "DAG-EU", "cluster_kind": "DAG", "cluster_role": "active"}),
        ("texts stripped", {"fqdn": "mbx01.contoso.example", "name": " MBX01 ", "organisation": "Contoso", "site": "Amsterdam", "edition": "Enterprise", "os_name": "Windows Server 2019", "environment": "production", "owner": "Messaging team"}, "mbx01.contoso.example", {"name": "MBX01", "organisation": "Contoso", "site": "Amsterdam", "edition": "Enterprise", "os_name": "Windows Server 2019", "environment": "production", "owner": "Messaging team"}),
        ("last_reported with a zone", {"fqdn": "mbx01.contoso.example", "last_reported": "2024-06-01T08:00:00Z"}, "mbx01.contoso.example", {"last_reported": datetime(2024, 6, 1, 8, tzinfo=UTC)}),
    ],
)  # fmt: skip
def test_valid_items_give_a_normalised_record(_case, data, fqdn, values):
    record, errors = server_record_from_mapping(data, typed=False)

    assert errors == {}
    assert record == ServerRecord(fqdn, frozenset(values), values)


def test_a_record_states_only_the_fields_it_was_given():
    record, _ = server_record_from_mapping({"fqdn": "mbx01.contoso.example", "roles": "Mailbox"})

    assert record.provided == frozenset({"roles"})
    assert record.get("build") is None
    assert record.get("tags", "absent") == "absent"


@pytest.mark.parametrize(
    ("_case", "data", "errors"),
    [
        ("not a mapping", ["mbx01.contoso.example"], {"non_field_errors": "expected an object"}),
        ("unknown field", {"fqdn": "mbx01.contoso.example", "colour": "blue"}, {"colour": "unknown field"}),
        ("missing fqdn", {"name": "MBX01"}, {"fqdn": "required"}),
        ("empty fqdn", {"fqdn": ""}, {"fqdn": "required"}),
        ("blank fqdn", {"fqdn": "   "}, {"fqdn": "required"}),
        ("fqdn without a domain", {"fqdn": "MBX01"}, {"fqdn": "'mbx01' is not a fully qualified domain name"}),
        ("fqdn with an underscore", {"fqdn": "mbx_01.contoso.example"}, {"fqdn": "'mbx_01.contoso.example' is not a fully qualified domain name"}),
        ("fqdn label starting with a hyphen", {"fqdn": "-mbx01.contoso.example"}, {"fqdn": "'-mbx01.contoso.example' is not a fully qualified domain name"}),
        ("fqdn longer than 255", {"fqdn": "a" * 250 + ".contoso.example"}, {"fqdn": "longer than 255 characters"}),
        ("bad role", {"fqdn": "mbx01.contoso.example", "roles": "Mailbox, Gateway"}, {"roles": f"'Gateway' {ROLES_ERROR}"}),
        ("malformed build", {"fqdn": "mbx01.contoso.example", "build": "15.2"}, {"build": "'15.2' is not a build number: expected four numbers separated by dots, got 2 part(s)"}),
        ("build part too large", {"fqdn": "mbx01.contoso.example", "build": "15.2.1544.99999"}, {"build": "'15.2.1544.99999' is not a build number: part '99999' is larger than 65535"}),
        ("malformed AdminDisplayVersion", {"fqdn": "mbx01.contoso.example", "build": "Version 15.2"}, {"build": "'Version 15.2' is not a build number: expected 'Version M.m (Build B.r)'"}),
        ("bad build_source", {"fqdn": "mbx01.contoso.example", "build": "15.2.1544.4", "build_source": "registry"}, {"build_source": "'registry' is not one of exsetup, admin_display, manual"}),
        ("bad build_source with an empty build", {"fqdn": "mbx01.contoso.example", "build": "", "build_source": "registry"}, {"build_source": "'registry' is not one of exsetup, admin_display, manual"}),
        ("build_source without a build", {"fqdn": "mbx01.contoso.example", "build_source": "exsetup"}, {"build_source": "build_source needs a build"}),
        ("bad dotnet", {"fqdn": "mbx01.contoso.example", "dotnet_version": "four point eight"}, {"dotnet_version": "'four point eight' is not a .NET Framework version such as 4.8 or 4.7.2"}),
        ("dotnet with one number", {"fqdn": "mbx01.contoso.example", "dotnet_version": "4"}, {"dotnet_version": "'4' is not a .NET Framework version such as 4.8 or 4.7.2"}),
        ("unknown prerequisite fact", {"fqdn": "mbx01.contoso.example", "prerequisites": {"powershell": "5.1"}}, {"prerequisites": f"'powershell' is not a known prerequisite ({PREREQUISITES})"}),
        ("non-bool forefront", {"fqdn": "mbx01.contoso.example", "is_forefront_installed": "maybe"}, {"is_forefront_installed": "expected true or false, got 'maybe'"}),
        ("number as forefront", {"fqdn": "mbx01.contoso.example", "is_forefront_installed": 2}, {"is_forefront_installed": "expected true or false, got 2"}),
        ("cluster without cluster_kind", {"fqdn": "mbx01.contoso.example", "cluster": "DAG-EU"}, {"cluster_kind": "required with cluster (CCR, SCR, SCC or DAG)"}),
        ("unknown cluster_kind", {"fqdn": "mbx01.contoso.example", "cluster": "DAG-EU", "cluster_kind": "nlb"}, {"cluster_kind": "'NLB' is not one of CCR, SCR, SCC, DAG"}),
        ("bad cluster_role", {"fqdn": "mbx01.contoso.example", "cluster_role": "primary"}, {"cluster_role": "'primary' is not active or passive"}),
        ("last_reported without a zone", {"fqdn": "mbx01.contoso.example", "last_reported": "2024-06-01T08:00:00"}, {"last_reported": "needs a time zone, e.g. 2026-11-25T08:00:00Z"}),
        ("last_reported not a date", {"fqdn": "mbx01.contoso.example", "last_reported": "yesterday"}, {"last_reported": "'yesterday' is not an ISO 8601 date and time"}),
        ("name too long", {"fqdn": "mbx01.contoso.example", "name": "M" * 65}, {"name": "longer than 64 characters"}),
        ("tag too long", {"fqdn": "mbx01.contoso.example", "tags": ["t" * 65]}, {"tags": "a tag is longer than 64 characters"}),
        ("wrong type: fqdn", {"fqdn": 42}, {"fqdn": "expected text, got int"}),
        ("wrong type: name", {"fqdn": "mbx01.contoso.example", "name": ["MBX01"]}, {"name": "expected text, got list"}),
        ("wrong type: build", {"fqdn": "mbx01.contoso.example", "build": 15.2}, {"build": "expected text, got float"}),
        ("wrong type: roles", {"fqdn": "mbx01.contoso.example", "roles": 7}, {"roles": "expected a list of roles or a comma-separated text"}),
        ("wrong type: a role", {"fqdn": "mbx01.contoso.example", "roles": ["Mailbox", 7]}, {"roles": "expected role names, got int"}),
        ("wrong type: dotnet", {"fqdn": "mbx01.contoso.example", "dotnet_version": 4.8}, {"dotnet_version": "expected text, got float"}),
        ("wrong type: prerequisites", {"fqdn": "mbx01.contoso.example", "prerequisites": "filter_pack"}, {"prerequisites": 'expected an object such as {"filter_pack": "2010 SP1"}'}),
        ("wrong type: prerequisite version", {"fqdn": "mbx01.contoso.example", "prerequisites": {"ucma": 4.0}}, {"prerequisites": "ucma: expected text, got float"}),
        ("wrong type: tags", {"fqdn": "mbx01.contoso.example", "tags": [1, 2]}, {"tags": "expected a list of tag names"}),
        ("wrong type: last_reported", {"fqdn": "mbx01.contoso.example", "last_reported": 1717228800}, {"last_reported": "1717228800 is not an ISO 8601 date and time"}),
        ("several problems at once, each keyed", {"fqdn": "MBX01", "roles": "Gateway", "build": "15.2", "colour": "blue"}, {"colour": "unknown field", "fqdn": "'mbx01' is not a fully qualified domain name", "roles": f"'Gateway' {ROLES_ERROR}", "build": "'15.2' is not a build number: expected four numbers separated by dots, got 2 part(s)"}),
    ],
)  # fmt: skip
def test_invalid_items_give_field_keyed_errors(_case, data, errors):
    record, found = server_record_from_mapping(data, typed=False)

    assert record is None
    assert found == errors
