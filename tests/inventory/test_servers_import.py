"""servers_import against the real database: Get-ExchangeServer | Export-Csv output and our plain CSV, all or nothing.

Every server, site, organisation and cluster name below is invented (.example domains); the builds are real.
"""

import codecs
import io
import json
from datetime import date

import pytest
from django.core.management import CommandError, call_command

from inventory.models import Cluster, ClusterMember, Organisation, Server, Site, Tag

# Invented estate, in the shape of:
# Get-ExchangeServer | Select Name,Fqdn,Site,ServerRole,Edition,AdminDisplayVersion | Export-Csv servers.csv
EXCHANGE_CSV = (
    "#TYPE Selected.Microsoft.Exchange.Data.Directory.Management.ExchangeServer\r\n"
    '"Name","Fqdn","Site","ServerRole","Edition","AdminDisplayVersion"\r\n'
    '"MBX01","MBX01.contoso.example","contoso.example/Configuration/Sites/Amsterdam","Mailbox, ClientAccess, HubTransport","Enterprise","Version 14.3 (Build 123.4)"\r\n'
    '"MBX02","mbx02.contoso.example","contoso.example/Configuration/Sites/Dublin","Mailbox","Standard","Version 15.2 (Build 1544.4)"\r\n'
    '"EDGE01","edge01.contoso.example","contoso.example/Configuration/Sites/Perimeter","Edge","Standard","Version 15.2 (Build 1258.16)"\r\n'
)
# The same export with ExSetupVersion added (the ExSetup.exe file version); it wins over AdminDisplayVersion.
EXCHANGE_CSV_WITH_EXSETUP = (
    "#TYPE Selected.Microsoft.Exchange.Data.Directory.Management.ExchangeServer\r\n"
    '"Name","Fqdn","Site","ServerRole","Edition","AdminDisplayVersion","ExSetupVersion"\r\n'
    '"MBX01","mbx01.contoso.example","contoso.example/Configuration/Sites/Amsterdam","Mailbox, ClientAccess, HubTransport","Enterprise","Version 14.3 (Build 123.4)","14.03.0513.000"\r\n'
)
# Invented estate with our own column names.
PLAIN_CSV = (
    "fqdn,name,organisation,site,roles,build,dotnet_version,filter_pack,is_forefront_installed,tags,cluster,cluster_kind,cluster_role\n"
    'mbx01.fabrikam.example,MBX01,Fabrikam,Head-Office,"Mailbox, ClientAccess, HubTransport",14.03.0513.000,4.8,2010 SP1,false,production;eu,DAG-HQ,DAG,active\n'
    "mbx02.fabrikam.example,MBX02,Fabrikam,Head-Office,Mailbox,14.3.513.0,4.8,2010 SP1,no,production,DAG-HQ,DAG,passive\n"
    "ccr-a.fabrikam.example,CCR-A,Fabrikam,Branch,Mailbox,8.3.192.1,,,true,,CCR-EX07,CCR,active\n"
)


def run(path, *args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("servers_import", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def server_values(fqdn: str) -> dict:
    server = Server.objects.select_related("organisation", "site").get(fqdn=fqdn)
    return {
        "name": server.name,
        "organisation": server.organisation.name,
        "site": server.site.name if server.site else None,
        "roles": server.roles,
        "edition": server.edition,
        "reported_build": server.reported_build,
        "build_source": server.build_source,
        "build": (server.build_major, server.build_minor, server.build_number, server.build_revision),
        "dotnet_version": server.dotnet_version,
        "prerequisites": server.prerequisites,
        "is_forefront_installed": server.is_forefront_installed,
        "tags": sorted(server.tags.values_list("name", flat=True)),
        "sync_source": server.sync_source,
    }


def nothing_written() -> bool:
    return not any(model.objects.exists() for model in (Server, Organisation, Site, Tag, Cluster, ClusterMember))


@pytest.mark.django_db
def test_exchange_export_creates_servers_with_organisation_and_site_from_the_site_path(tmp_path):
    path = write(tmp_path, "servers.csv", EXCHANGE_CSV)

    out, err = run(path)

    assert out == "3 created, 0 updated, 0 unchanged\n"
    assert err == ""
    assert list(Server.objects.values_list("fqdn", flat=True)) == [
        "edge01.contoso.example",
        "mbx01.contoso.example",
        "mbx02.contoso.example",
    ]
    assert server_values("mbx01.contoso.example") == {
        "name": "MBX01",
        "organisation": "contoso.example",
        "site": "Amsterdam",
        "roles": "Mailbox,ClientAccess,HubTransport",
        "edition": "Enterprise",
        "reported_build": "Version 14.3 (Build 123.4)",
        "build_source": "admin_display",
        "build": (14, 3, 123, 4),
        "dotnet_version": "",
        "prerequisites": {},
        "is_forefront_installed": False,
        "tags": [],
        "sync_source": "csv:servers.csv",
    }
    assert server_values("edge01.contoso.example")["roles"] == "EdgeTransport"
    assert server_values("mbx02.contoso.example")["build"] == (15, 2, 1544, 4)
    assert list(Organisation.objects.values_list("name", flat=True)) == ["contoso.example"]
    assert list(Site.objects.values_list("name", flat=True)) == ["Amsterdam", "Dublin", "Perimeter"]


@pytest.mark.django_db
def test_exchange_export_with_exsetup_version_takes_that_build(tmp_path):
    path = write(tmp_path, "exsetup.csv", EXCHANGE_CSV_WITH_EXSETUP)

    out, _ = run(path)

    assert out == "1 created, 0 updated, 0 unchanged\n"
    values = server_values("mbx01.contoso.example")
    assert (values["reported_build"], values["build_source"], values["build"]) == (
        "14.03.0513.000",
        "exsetup",
        (14, 3, 513, 0),
    )
    assert (values["organisation"], values["site"], values["roles"]) == (
        "contoso.example",
        "Amsterdam",
        "Mailbox,ClientAccess,HubTransport",
    )


@pytest.mark.django_db
def test_exchange_export_then_the_exsetup_export_updates_the_build(tmp_path):
    run(write(tmp_path, "servers.csv", EXCHANGE_CSV))

    out, _ = run(write(tmp_path, "exsetup.csv", EXCHANGE_CSV_WITH_EXSETUP))

    assert out == "0 created, 1 updated, 0 unchanged\n"
    values = server_values("mbx01.contoso.example")
    assert (values["reported_build"], values["build_source"], values["build"], values["sync_source"]) == (
        "14.03.0513.000",
        "exsetup",
        (14, 3, 513, 0),
        "csv:exsetup.csv",
    )


@pytest.mark.django_db
def test_plain_csv_stores_every_column(tmp_path):
    path = write(tmp_path, "plain.csv", PLAIN_CSV)

    out, _ = run(path)

    assert out == "3 created, 0 updated, 0 unchanged\n"
    assert server_values("mbx01.fabrikam.example") == {
        "name": "MBX01",
        "organisation": "Fabrikam",
        "site": "Head-Office",
        "roles": "Mailbox,ClientAccess,HubTransport",
        "edition": "",
        "reported_build": "14.03.0513.000",
        "build_source": "exsetup",
        "build": (14, 3, 513, 0),
        "dotnet_version": "4.8",
        "prerequisites": {"filter_pack": "2010 SP1"},
        "is_forefront_installed": False,
        "tags": ["eu", "production"],
        "sync_source": "csv:plain.csv",
    }
    ccr = server_values("ccr-a.fabrikam.example")
    assert (ccr["site"], ccr["build"], ccr["dotnet_version"], ccr["prerequisites"], ccr["is_forefront_installed"]) == (
        "Branch",
        (8, 3, 192, 1),
        "",
        {},
        True,
    )
    assert ccr["tags"] == []
    assert sorted(
        ClusterMember.objects.values_list("cluster__organisation__name", "cluster__name", "cluster__kind", "server__fqdn", "is_active")
    ) == [
        ("Fabrikam", "CCR-EX07", "CCR", "ccr-a.fabrikam.example", True),
        ("Fabrikam", "DAG-HQ", "DAG", "mbx01.fabrikam.example", True),
        ("Fabrikam", "DAG-HQ", "DAG", "mbx02.fabrikam.example", False),
    ]  # fmt: skip
    assert Cluster.objects.count() == 2
    assert sorted(Site.objects.values_list("organisation__name", "name")) == [
        ("Fabrikam", "Branch"),
        ("Fabrikam", "Head-Office"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "name", "text", "count"),
    [("Get-ExchangeServer export", "servers.csv", EXCHANGE_CSV, 3), ("plain CSV", "plain.csv", PLAIN_CSV, 3)],
)
def test_reimporting_the_same_file_changes_nothing(tmp_path, _case, name, text, count):
    path = write(tmp_path, name, text)
    run(path)
    stamps = dict(Server.objects.values_list("fqdn", "last_updated"))
    members = list(ClusterMember.objects.order_by("pk").values_list("pk", "cluster_id", "server_id", "is_active"))

    out, _ = run(path)

    assert out == f"0 created, 0 updated, {count} unchanged\n"
    assert dict(Server.objects.values_list("fqdn", "last_updated")) == stamps
    assert (
        list(ClusterMember.objects.order_by("pk").values_list("pk", "cluster_id", "server_id", "is_active")) == members
    )


@pytest.mark.django_db
def test_upsert_is_case_insensitive_on_fqdn_and_reports_the_change(tmp_path):
    run(write(tmp_path, "plain.csv", PLAIN_CSV))
    before = dict(Server.objects.values_list("fqdn", "last_updated"))
    # Invented: the same server written in upper case, with the same build in its short form (other text, so the
    # build counts as changed) and one more tag.
    changed = write(
        tmp_path,
        "changed.csv",
        "fqdn,build,tags\nMBX01.FABRIKAM.EXAMPLE,14.3.513.0,production;eu;patched\n",
    )

    out, _ = run(changed, "--verbosity", "2")

    assert out == "0 created, 1 updated, 0 unchanged\n  mbx01.fabrikam.example: updated build, tags\n"
    assert Server.objects.count() == 3
    values = server_values("mbx01.fabrikam.example")
    assert (values["reported_build"], values["build"], values["tags"], values["sync_source"]) == (
        "14.3.513.0",
        (14, 3, 513, 0),
        ["eu", "patched", "production"],
        "csv:changed.csv",
    )
    # Columns the file does not state are left as stored.
    assert (values["organisation"], values["site"], values["dotnet_version"], values["prerequisites"]) == (
        "Fabrikam",
        "Head-Office",
        "4.8",
        {"filter_pack": "2010 SP1"},
    )
    after = dict(Server.objects.values_list("fqdn", "last_updated"))
    assert after["mbx01.fabrikam.example"] > before["mbx01.fabrikam.example"]
    assert {k: v for k, v in after.items() if k != "mbx01.fabrikam.example"} == {
        k: v for k, v in before.items() if k != "mbx01.fabrikam.example"
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "name", "text", "expected"),
    [
        ("Get-ExchangeServer export", "servers.csv", EXCHANGE_CSV, "dry run, nothing written: 3 created, 0 updated, 0 unchanged\n"),
        ("plain CSV", "plain.csv", PLAIN_CSV, "dry run, nothing written: 3 created, 0 updated, 0 unchanged\n"),
    ],
)  # fmt: skip
def test_dry_run_reports_and_writes_nothing(tmp_path, _case, name, text, expected):
    out, _ = run(write(tmp_path, name, text), "--dry-run")

    assert out == expected
    assert nothing_written()


@pytest.mark.django_db
def test_dry_run_of_changes_leaves_stored_servers_as_they_were(tmp_path):
    run(write(tmp_path, "plain.csv", PLAIN_CSV))
    before = list(Server.objects.order_by("pk").values())
    # Invented: a changed build for one server and a new server.
    path = write(
        tmp_path, "more.csv", "fqdn,build\nmbx01.fabrikam.example,14.3.496.0\nmbx03.fabrikam.example,14.3.513.0\n"
    )

    out, _ = run(path, "--dry-run")

    assert out == "dry run, nothing written: 1 created, 1 updated, 0 unchanged\n"
    assert list(Server.objects.order_by("pk").values()) == before


@pytest.mark.django_db
def test_rows_with_errors_are_reported_by_line_and_field_and_nothing_is_written(tmp_path):
    # Invented: rows 2 and 4 are valid, row 3 has a malformed build, row 5 an unknown role.
    path = write(
        tmp_path,
        "bad.csv",
        "fqdn,roles,build\n"
        "mbx01.contoso.example,Mailbox,15.2.1544.4\n"
        "mbx02.contoso.example,Mailbox,15.2\n"
        "mbx03.contoso.example,Mailbox,15.2.1544.4\n"
        "mbx04.contoso.example,Gateway,15.2.1544.4\n",
    )
    err = io.StringIO()

    with pytest.raises(CommandError) as error:
        call_command("servers_import", str(path), stdout=io.StringIO(), stderr=err)

    assert str(error.value) == f"{path}: 2 row(s) with errors; nothing was written"
    assert err.getvalue().splitlines() == [
        "line 3: build: '15.2' is not a build number: expected four numbers separated by dots, got 2 part(s)",
        "line 5: roles: 'Gateway' is not an Exchange role (Mailbox, ClientAccess, HubTransport, EdgeTransport, UnifiedMessaging)",
    ]
    assert nothing_written()


@pytest.mark.django_db
def test_errors_in_an_exchange_export_count_the_type_line(tmp_path):
    # Invented: the second data row (file line 4, after the #TYPE line and the header) has no FQDN.
    path = write(
        tmp_path,
        "servers.csv",
        "#TYPE Selected.Microsoft.Exchange.Data.Directory.Management.ExchangeServer\r\n"
        '"Name","Fqdn","Site","ServerRole","Edition","AdminDisplayVersion"\r\n'
        '"MBX01","mbx01.contoso.example","contoso.example/Configuration/Sites/Amsterdam","Mailbox","Standard","Version 15.2 (Build 1544.4)"\r\n'
        '"MBX09","","contoso.example/Configuration/Sites/Amsterdam","Mailbox","Standard","Version 15.2 (Build 1544.4)"\r\n',
    )
    err = io.StringIO()

    with pytest.raises(CommandError) as error:
        call_command("servers_import", str(path), stdout=io.StringIO(), stderr=err)

    assert str(error.value) == f"{path}: 1 row(s) with errors; nothing was written"
    assert err.getvalue() == "line 4: fqdn: required\n"
    assert nothing_written()


@pytest.mark.django_db
def test_a_duplicate_fqdn_names_both_lines(tmp_path):
    # Invented: the same server twice, the second time in upper case.
    path = write(
        tmp_path,
        "dup.csv",
        "fqdn,build\nmbx01.contoso.example,15.2.1544.4\nmbx02.contoso.example,15.2.1544.4\nMBX01.contoso.example,15.2.1544.9\n",
    )
    err = io.StringIO()

    with pytest.raises(CommandError) as error:
        call_command("servers_import", str(path), stdout=io.StringIO(), stderr=err)

    assert str(error.value) == f"{path}: 2 row(s) with errors; nothing was written"
    assert err.getvalue() == (
        "line 2: fqdn: mbx01.contoso.example is also on line 4\nline 4: fqdn: mbx01.contoso.example is also on line 2\n"
    )
    assert nothing_written()


@pytest.mark.django_db
def test_errors_leave_servers_already_stored_untouched(tmp_path):
    run(write(tmp_path, "plain.csv", PLAIN_CSV))
    before = list(Server.objects.order_by("pk").values())
    # Invented: a valid change for one stored server and an invalid row.
    path = write(tmp_path, "mixed.csv", "fqdn,build\nmbx01.fabrikam.example,14.3.496.0\nmbx09.fabrikam.example,14.3\n")

    with pytest.raises(CommandError, match=r"1 row\(s\) with errors; nothing was written"):
        call_command("servers_import", str(path), stdout=io.StringIO(), stderr=io.StringIO())

    assert list(Server.objects.order_by("pk").values()) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "text", "message"),
    [
        ("no fqdn column", "name,build\nMBX01,15.2.1544.4\n", "{path}: no 'fqdn' column (expected Get-ExchangeServer | Export-Csv output or our column names; read 2 column(s) separated by ',': name, build)"),
        ("no fqdn in another dialect", "Name;Build\nMBX01;15.2.1544.4\n", "{path}: no 'fqdn' column (expected Get-ExchangeServer | Export-Csv output or our column names; read 2 column(s) separated by ';': Name, Build)"),
        ("empty file", "", "{path}: empty file"),
        ("header only", "fqdn,build\n", "{path}: no server rows"),
    ],
)  # fmt: skip
def test_file_level_errors_write_nothing(tmp_path, _case, text, message):
    path = write(tmp_path, "servers.csv", text)

    with pytest.raises(CommandError) as error:
        run(path)

    assert str(error.value) == message.format(path=path)
    assert nothing_written()


@pytest.mark.django_db
def test_a_nonexistent_file_is_named(tmp_path):
    path = tmp_path / "absent.csv"

    with pytest.raises(CommandError) as error:
        run(path)

    assert str(error.value) == f"{path}: no such file"
    assert nothing_written()


# --- faults 6 and 7: a mixed organisation's export in every dialect PowerShell writes (invented servers) ---

MIXED_EXPORT_ROWS = [
    ["Name", "Fqdn", "Site", "ServerRole", "Edition", "AdminDisplayVersion", "IsMemberOfCluster", "OrganizationalUnit"],
    ["EX03", "ex03.contoso.example", "contoso.example/Configuration/Sites/München", "None", "Standard",
     "Version 6.5 (Build 7638.2: Service Pack 2)", "No", "contoso.example/EX03"],
    ["EX07", "ex07.contoso.example", "contoso.example/Configuration/Sites/München", "Mailbox, ClientAccess, HubTransport",
     "Enterprise", "Version 8.3 (Build 83.6)", "No", "contoso.example/EX07"],
    ["EX19", "ex19.contoso.example", "contoso.example/Configuration/Sites/Zürich", "Mailbox", "Standard",
     "Version 15.2 (Build 31544.4)", "No", "contoso.example/EX19"],
]  # fmt: skip


def powershell_csv(rows, *, delimiter=",", type_line=True) -> str:
    """As Export-Csv writes it: every cell quoted, CRLF line ends, the #TYPE line of Windows PowerShell."""
    lines = [delimiter.join(f'"{cell}"' for cell in row) for row in rows]
    head = ["#TYPE Selected.Microsoft.Exchange.Data.Directory.Management.ExchangeServer"] if type_line else []
    return "\r\n".join(head + lines) + "\r\n"


def encoded(text: str, encoding: str) -> bytes:
    return {
        "utf-8": lambda: text.encode("utf-8"),
        "utf-8 with BOM (Export-Csv -Encoding UTF8)": lambda: text.encode("utf-8-sig"),
        "UTF-16 LE with BOM (Windows PowerShell > and Out-File)": lambda: text.encode("utf-16"),
        "UTF-16 BE with BOM (-Encoding BigEndianUnicode)": lambda: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
        "UTF-16 LE without BOM": lambda: text.encode("utf-16-le"),
        "Windows-1252 (-Encoding Default)": lambda: text.encode("cp1252"),
    }[encoding]()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "encoding",
    [
        "utf-8",
        "utf-8 with BOM (Export-Csv -Encoding UTF8)",
        "UTF-16 LE with BOM (Windows PowerShell > and Out-File)",
        "UTF-16 BE with BOM (-Encoding BigEndianUnicode)",
        "UTF-16 LE without BOM",
        "Windows-1252 (-Encoding Default)",
    ],
)
@pytest.mark.parametrize(
    ("delimiter", "type_line"),
    [(",", True), (";", True), (";", False), ("\t", False)],
    ids=["comma", "semicolon (-UseCulture, de-DE/fr-FR/nl-NL)", "semicolon, PowerShell 7 (no #TYPE)", "tab"],
)
def test_a_mixed_export_is_read_in_every_encoding_and_dialect(tmp_path, encoding, delimiter, type_line):
    path = tmp_path / "servers.csv"
    path.write_bytes(encoded(powershell_csv(MIXED_EXPORT_ROWS, delimiter=delimiter, type_line=type_line), encoding))
    first = 3 if type_line else 2  # the file line of EX03

    out, err = run(path)

    assert out == "3 created, 0 updated, 0 unchanged\n"
    assert err.splitlines() == [
        "warning: ignored column(s): OrganizationalUnit",
        f"warning: line {first}: ex03.contoso.example runs Exchange 2003 or older (Version 6.5 (Build 7638.2: Service "
        "Pack 2)): imported as legacy, shown but never planned",
    ]
    legacy = server_values("ex03.contoso.example")
    assert (legacy["organisation"], legacy["site"], legacy["roles"], legacy["build"], legacy["build_source"]) == (
        "contoso.example", "München", "", (6, 5, 7638, 2), "admin_display",
    )  # fmt: skip
    assert server_values("ex07.contoso.example")["roles"] == "Mailbox,ClientAccess,HubTransport"
    # The AD serialNumber form (fault 2) is a level-only build like AdminDisplayVersion.
    ex19 = server_values("ex19.contoso.example")
    assert (ex19["site"], ex19["build"], ex19["build_source"]) == ("Zürich", (15, 2, 1544, 4), "admin_display")


@pytest.mark.django_db
def test_legacy_servers_are_shown_with_their_own_state_and_never_planned(tmp_path, loaded_catalog):
    from inventory.models import ServerResult
    from inventory.services import scan_run_execute

    run(write(tmp_path, "servers.csv", powershell_csv(MIXED_EXPORT_ROWS)), "--verbosity", "0")
    scan_run_execute(as_of=date(2026, 11, 25))
    out = io.StringIO()

    with pytest.raises(CommandError) as error:
        call_command("plan", "--server", "ex03.contoso.example", stdout=out)

    states = dict(ServerResult.objects.values_list("server__fqdn", "verdict__state"))
    assert states["ex03.contoso.example"] == "legacy"
    assert states["ex07.contoso.example"] != "legacy"
    assert "6.5.7638.2" in str(error.value)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "data"),
    [
        ("upper-case header, semicolons, UTF-16", "FQDN;Site;Roles;Build;DotNet_Version\r\nmbx01.contoso.example;Paris;Mailbox;15.2.1544.4;4.8.1\r\n".encode("utf-16")),
        ("Fqdn as PowerShell capitalises it", b"Fqdn,Site,Roles,Build,dotnet_version\nmbx01.contoso.example,Paris,Mailbox,15.2.1544.4,4.8.1\n"),
        ("tabs and a trailing delimiter", b"fqdn\tsite\troles\tbuild\tdotnet_version\t\nmbx01.contoso.example\tParis\tMailbox\t15.2.1544.4\t4.8.1\t\n"),
        ("blank lines before the header", b"\r\n\r\nfqdn,site,roles,build,dotnet_version\r\nmbx01.contoso.example,Paris,Mailbox,15.2.1544.4,4.8.1\r\n"),
    ],
)  # fmt: skip
def test_our_own_columns_in_any_case_and_dialect(tmp_path, _case, data):
    path = tmp_path / "plain.csv"
    path.write_bytes(data)

    out, err = run(path)

    assert (out, err) == ("1 created, 0 updated, 0 unchanged\n", "")
    values = server_values("mbx01.contoso.example")
    assert (values["site"], values["roles"], values["build"], values["dotnet_version"]) == (
        "Paris", "Mailbox", (15, 2, 1544, 4), "4.8.1",
    )  # fmt: skip


@pytest.mark.django_db
def test_an_export_with_our_own_columns_beside_reads_both_and_ignores_the_rest(tmp_path):
    # Invented: an admin added dotnet_version and Owner to an export; "Colour" means nothing to us.
    rows = [
        ["Name", "Fqdn", "Site", "ServerRole", "Edition", "AdminDisplayVersion", "ExSetupVersion", "dotnet_version", "Owner", "Colour"],
        ["EX19", "ex19.contoso.example", "contoso.example/Configuration/Sites/Paris", "Mailbox", "Standard",
         "Version 15.2 (Build 1544.4)", "15.02.1544.009", "4.8.1", "Messaging team", "blue"],
    ]  # fmt: skip
    _out, err = run(write(tmp_path, "servers.csv", powershell_csv(rows)), "--verbosity", "2")

    values = server_values("ex19.contoso.example")
    assert (values["reported_build"], values["dotnet_version"], values["build_source"]) == (
        "15.02.1544.009",
        "4.8.1",
        "exsetup",
    )
    assert Server.objects.get().owner == "Messaging team"
    assert err.splitlines() == [
        f"{tmp_path / 'servers.csv'}: read as Get-ExchangeServer export, UTF-8, ','-separated",
        "warning: ignored column(s): Colour",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "row", "message"),
    [
        ("a build that is not one", ["EX20", "ex20.contoso.example", "", "Mailbox", "Standard", "Version 15.2", "No", ""],
         "line 3: build: 'Version 15.2' is not a build number: expected 'Version M.m (Build B.r)'"),
        ("no FQDN", ["EX21", "", "", "Mailbox", "Standard", "Version 15.2 (Build 1544.4)", "No", ""], "line 3: fqdn: required"),
        ("more cells than columns", ["EX22", "ex22.contoso.example", "", "Mailbox", "Standard", "Version 15.2 (Build 1544.4)", "No", "", "extra"],
         "line 3: 9 cells for 8 columns"),
        ("a role that is none of Exchange's", ["EX23", "ex23.contoso.example", "", "Janitor", "Standard", "Version 15.2 (Build 1544.4)", "No", ""],
         "line 3: roles: 'Janitor' is not an Exchange role (Mailbox, ClientAccess, HubTransport, EdgeTransport, UnifiedMessaging)"),
    ],
)  # fmt: skip
def test_only_what_is_really_malformed_is_rejected_and_nothing_is_written(tmp_path, _case, row, message):
    path = write(
        tmp_path, "servers.csv", powershell_csv([MIXED_EXPORT_ROWS[0], row, *MIXED_EXPORT_ROWS[1:]], delimiter=";")
    )
    err = io.StringIO()

    with pytest.raises(CommandError) as error:
        call_command("servers_import", str(path), stdout=io.StringIO(), stderr=err)

    assert str(error.value) == f"{path}: 1 row(s) with errors; nothing was written"
    assert message in err.getvalue().splitlines()
    assert nothing_written()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("_case", "name", "data", "message"),
    [
        ("an .xlsx workbook (a ZIP)", "servers.xlsx", b"PK\x03\x04" + bytes(range(256)) * 8,
         "a spreadsheet workbook, not a CSV file (an .xlsx? save it as CSV)"),
        ("an old .xls workbook", "servers.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 8,
         "a spreadsheet workbook, not a CSV file (an .xlsx? save it as CSV)"),
        ("random bytes (invented)", "servers.csv", bytes(range(1, 32)) * 64, "binary data, not a CSV file"),
    ],
)  # fmt: skip
def test_a_binary_file_is_named_not_imported(tmp_path, _case, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)

    with pytest.raises(CommandError) as error:
        run(path)

    assert str(error.value) == f"{path}: {message}"
    assert nothing_written()


# -- clusters in a real export (issue 9, fault 8) -------------------------------------------------------------

# The full Get-ExchangeServer | Export-Csv of an Exchange 2007 organisation (invented names; the columns are those
# of Exchange 2007's ExchangeServer object, trimmed of a few GUID-valued ones): the clustered mailbox server is
# listed with IsMemberOfCluster "Yes"; its nodes are not Exchange server objects and are not listed.
EXPORT_2007 = (
    "#TYPE Microsoft.Exchange.Data.Directory.Management.ExchangeServer\r\n"
    '"Name","DataPath","Domain","Edition","ExchangeLegacyDN","Fqdn","IsHubTransportServer","IsClientAccessServer",'
    '"IsExchange2007OrLater","IsEdgeServer","IsMailboxServer","IsMemberOfCluster","IsProvisionedServer",'
    '"IsUnifiedMessagingServer","AdminDisplayVersion","Site","ServerRole","OriginatingServer","ExchangeVersion",'
    '"Identity","WhenChanged","WhenCreated"\r\n'
    '"CMS-FAB","C:\\Program Files\\Microsoft\\Exchange Server\\Mailbox","fabrikam.example","Enterprise",'
    '"/o=Fabrikam/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=CMS-FAB",'
    '"cms-fab.fabrikam.example","False","False","True","False","True","Yes","False","False",'
    '"Version 8.1 (Build 240.6)","fabrikam.example/Configuration/Sites/Head-Office","Mailbox","dc01.fabrikam.example",'
    '"0.1 (8.0.535.0)","CMS-FAB","10/02/2011 14:03:12","03/01/2008 09:12:44"\r\n'
    '"HUB-FAB","C:\\Program Files\\Microsoft\\Exchange Server\\Mailbox","fabrikam.example","Standard",'
    '"/o=Fabrikam/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=HUB-FAB",'
    '"hub-fab.fabrikam.example","True","True","True","False","False","No","False","False",'
    '"Version 8.1 (Build 240.6)","fabrikam.example/Configuration/Sites/Head-Office","ClientAccess, HubTransport",'
    '"dc01.fabrikam.example","0.1 (8.0.535.0)","HUB-FAB","10/02/2011 14:03:12","03/01/2008 09:12:44"\r\n'
)
# A Get-MailboxServer export adds ClusteredStorageType (2007: NonShared is CCR, Shared is SCC); 2010 and later add
# DatabaseAvailabilityGroup. Invented servers.
EXPORT_WITH_CLUSTER_COLUMNS = (
    "#TYPE Selected.Microsoft.Exchange.Data.Directory.Management.ExchangeServer\r\n"
    '"Name","Fqdn","Site","ServerRole","AdminDisplayVersion","IsMemberOfCluster","ClusteredStorageType","DatabaseAvailabilityGroup"\r\n'
    '"CMS-FAB","cms-fab.fabrikam.example","fabrikam.example/Configuration/Sites/Head-Office","Mailbox","Version 8.1 (Build 240.6)","Yes","NonShared",""\r\n'
    '"SCC-FAB","scc-fab.fabrikam.example","fabrikam.example/Configuration/Sites/Head-Office","Mailbox","Version 8.3 (Build 83.6)","Yes","Shared",""\r\n'
    '"MBX19A","mbx19a.contoso.example","contoso.example/Configuration/Sites/Amsterdam","Mailbox","Version 15.2 (Build 1544.4)","No","","DAG-AMS"\r\n'
)
# The CMS's nodes, with our column names: each node's ExSetup.exe build (what a node runs), named after the CMS.
NODES_CSV = (
    "fqdn,site,roles,build,cluster,cluster_kind,cluster_role,is_forefront_installed\n"
    "cms-fab-n1.fabrikam.example,Head-Office,Mailbox,8.1.240.6,CMS-FAB,CCR,active,true\n"
    "cms-fab-n2.fabrikam.example,Head-Office,Mailbox,8.1.240.6,CMS-FAB,CCR,passive,true\n"
)


@pytest.mark.django_db
def test_a_real_export_marks_the_clustered_mailbox_server_and_plan_refuses_it_until_its_nodes_are_known(
    tmp_path, loaded_catalog, settings
):
    settings.EXCHANGEPATCH_TODAY = "2026-11-25"
    output, _ = run(write(tmp_path, "exchange-2007.csv", EXPORT_2007))

    assert "2 created" in output
    cms = Server.objects.get(fqdn="cms-fab.fabrikam.example")
    assert (cms.is_clustered_mailbox_server, cms.build_source, cms.reported_build) == (
        True,
        "admin_display",
        "Version 8.1 (Build 240.6)",
    )
    assert Server.objects.get(fqdn="hub-fab.fabrikam.example").is_clustered_mailbox_server is False
    assert not ClusterMember.objects.exists()  # the clustered mailbox server is no node
    with pytest.raises(CommandError) as error:
        call_command("plan", "--server", "cms-fab.fabrikam.example", stdout=io.StringIO())
    assert "import its nodes (one row per node with its ExSetup.exe build, cluster=CMS-FAB" in str(error.value)

    run(write(tmp_path, "nodes.csv", NODES_CSV))
    plan = io.StringIO()
    call_command("plan", "--server", "cms-fab.fabrikam.example", "--format", "json", stdout=plan)

    steps = json.loads(plan.getvalue())["steps"]
    commands = [s["command"] for s in steps if s["command"]]
    assert 'cluster.exe group "CMS-FAB" /moveto:CMS-FAB-N2' in commands  # SP1 → SP3 on the CMS's nodes
    assert "setup.com /upgradecms" in commands
    assert Cluster.objects.get(name="CMS-FAB").members.count() == 2


@pytest.mark.django_db
def test_cluster_columns_give_the_kind_of_cluster_and_dag_membership(tmp_path, loaded_catalog):
    run(write(tmp_path, "mailbox-servers.csv", EXPORT_WITH_CLUSTER_COLUMNS))

    assert dict(Cluster.objects.values_list("name", "kind")) == {"CMS-FAB": "CCR", "SCC-FAB": "SCC", "DAG-AMS": "DAG"}
    assert list(ClusterMember.objects.values_list("server__fqdn", "cluster__name")) == [
        ("mbx19a.contoso.example", "DAG-AMS")
    ]
    assert set(Server.objects.filter(is_clustered_mailbox_server=True).values_list("fqdn", flat=True)) == {
        "cms-fab.fabrikam.example", "scc-fab.fabrikam.example"}  # fmt: skip
    again, _ = run(write(tmp_path, "mailbox-servers.csv", EXPORT_WITH_CLUSTER_COLUMNS))
    assert "0 created, 0 updated, 3 unchanged" in again


@pytest.mark.django_db
def test_a_clustered_mailbox_server_cannot_be_a_member_and_nothing_is_written(tmp_path, loaded_catalog):
    text = "fqdn,build,is_clustered_mailbox_server,cluster,cluster_kind\ncms.fabrikam.example,8.3.83.6,true,CCR-X,CCR\n"

    with pytest.raises(CommandError):
        run(write(tmp_path, "bad.csv", text))

    assert not Server.objects.exists() and not Cluster.objects.exists()


# -- streaming in batches (issue 13): the file is read BATCH rows at a time, still all or nothing ---------------------

BATCHED_CSV = "fqdn,site,roles,build\n" + "".join(
    f"ex{index:02d}.contoso.example,Paris,Mailbox,15.02.1544.009\n" for index in range(7)
)  # invented servers, real build


@pytest.fixture
def small_batches(monkeypatch):
    from inventory.management.commands import servers_import

    monkeypatch.setattr(servers_import, "BATCH", 2)


@pytest.mark.django_db
def test_a_file_of_several_batches_stores_every_row(tmp_path, small_batches):
    path = write(tmp_path, "batched.csv", BATCHED_CSV)

    out, _ = run(path)
    again, _ = run(path)

    assert out == "7 created, 0 updated, 0 unchanged\n"
    assert again == "0 created, 0 updated, 7 unchanged\n"
    assert Server.objects.count() == 7 and Site.objects.count() == 1


@pytest.mark.django_db
def test_a_bad_row_in_a_later_batch_means_the_earlier_batches_are_not_written(tmp_path, small_batches):
    bad = BATCHED_CSV.replace("ex05.contoso.example,Paris,Mailbox,15.02.1544.009", "ex05,Paris,Janitor,15.02.1544.009")
    path = write(tmp_path, "late.csv", bad)
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"late.csv: 1 row\(s\) with errors; nothing was written"):
        call_command("servers_import", str(path), stdout=io.StringIO(), stderr=err)

    assert err.getvalue().startswith("line 7: fqdn: 'ex05' is not a fully qualified domain name; roles: 'Janitor'")
    assert nothing_written()


@pytest.mark.django_db
def test_a_duplicate_fqdn_in_another_batch_names_both_lines(tmp_path, small_batches):
    path = write(tmp_path, "twice.csv", BATCHED_CSV + "EX01.contoso.example,Lyon,Mailbox,15.02.1544.009\n")
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"2 row\(s\) with errors; nothing was written"):
        call_command("servers_import", str(path), stdout=io.StringIO(), stderr=err)

    assert err.getvalue().splitlines() == [
        "line 3: fqdn: ex01.contoso.example is also on line 9",
        "line 9: fqdn: ex01.contoso.example is also on line 3",
    ]
    assert nothing_written()


@pytest.mark.django_db
def test_a_dry_run_over_several_batches_counts_everything_and_writes_nothing(tmp_path, small_batches):
    path = write(tmp_path, "dry.csv", BATCHED_CSV)

    out, _ = run(path, "--dry-run")

    assert out == "dry run, nothing written: 7 created, 0 updated, 0 unchanged\n"
    assert nothing_written()


def test_the_rows_of_an_opened_file_are_read_as_they_are_iterated(tmp_path):
    from inventory.importers import open_server_file

    path = write(tmp_path, "lazy.csv", BATCHED_CSV)
    with path.open("rb") as stream:
        parsed = open_server_file(stream, name="lazy.csv")
        first = next(iter(parsed.rows))
        rest = list(parsed.rows)

    assert not isinstance(parsed.rows, list)
    assert first == (
        2,
        {"fqdn": "ex00.contoso.example", "site": "Paris", "roles": "Mailbox", "build": "15.02.1544.009"},
    )
    assert [line for line, _ in rest] == [3, 4, 5, 6, 7, 8]


@pytest.mark.django_db
def test_the_import_restores_the_garbage_collector_settings(tmp_path):
    import gc

    before = gc.get_threshold()

    run(write(tmp_path, "gc.csv", BATCHED_CSV))

    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


@pytest.mark.django_db
def test_a_server_created_by_another_writer_after_the_read_is_not_created_twice(tmp_path, small_batches, monkeypatch):
    """New servers are COPYed into the table on PostgreSQL: one that another writer created after the import read
    what is stored fails the batch, which is run again from its savepoint and finds it (on SQLite it is skipped and
    reported as created: SQLite's path finds the rows by key after inserting). Either way the import succeeds and
    the server is there once."""
    from django.db import connection

    from inventory import services

    path = write(tmp_path, "raced.csv", BATCHED_CSV)
    run(write(tmp_path, "one.csv", "fqdn,site,roles,build\nex03.contoso.example,Paris,Mailbox,15.02.1544.009\n"))
    real, hidden = services._server_rows, []

    def stale_read(fqdns, *, lock=False):
        rows = real(fqdns, lock=lock)
        if not lock and "ex03.contoso.example" in rows and not hidden:
            hidden.append(rows.pop("ex03.contoso.example"))  # as if read before the other writer committed
        return rows

    monkeypatch.setattr(services, "_server_rows", stale_read)

    out, _ = run(path)

    assert hidden, "the stale read did not happen"
    if connection.vendor == "postgresql":
        assert out == "6 created, 0 updated, 1 unchanged\n"  # found when the batch ran again
    assert Server.objects.count() == 7
    assert Server.objects.filter(fqdn="ex03.contoso.example").count() == 1
