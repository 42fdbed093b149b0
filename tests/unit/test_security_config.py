"""What docs/security.md promises, checked on the shipped configuration and code without
an Asterisk: loopback-only listeners, no committed secret, AMI least privilege.

The Asterisk files are read with a small parser of Asterisk's config syntax: ``;``
comments, ``[name](options)`` sections where the options name templates to inherit
(``!`` marks a template, ``+`` adds to an existing section), repeated keys (``deny``
and ``permit`` are rules in order; otherwise the last value wins, as in manager.c),
``=>`` as ``=``, and ``#include``/``#tryinclude``, which continue the current section.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest

from televikar_pbx.agi.server import FeatureServer
from televikar_pbx.asterisk_conf import STATES_CONTEXT, render_hints
from televikar_pbx.cli import build_parser
from televikar_pbx.control import start_control
from televikar_pbx.domain.directory import Agent, Customer, Directory
from televikar_pbx.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "asterisk" / "conf"
LAB_SH = ROOT / "asterisk" / "lab.sh"
SRC = ROOT / "src" / "televikar_pbx"

LOOPBACK = "127.0.0.1"
AMI_TEMPLATE = "televikar-ami"
AMI_USER = "televikar"  # lab.sh's AMI_USER, Settings.ami_user
ARI_USER = "televikar"  # lab.sh's ARI_USER

# Every AMI action and event the service uses, with the manager permission classes
# Asterisk 22 registers for it (`manager show command X` on the lab; ContactStatus:
# main/stasis_endpoints.c, EVENT_FLAG_SYSTEM). An action needs one of its classes in
# the user's `write`, an event all of its classes in `read`; none: any user may.
AMI_ACTIONS: dict[str, frozenset[str]] = {
    "Login": frozenset(),  # panoramisk, on every (re)connect
    "Ping": frozenset(),  # panoramisk's keepalive (ping_delay)
    "PJSIPShowAors": frozenset({"system"}),
    "PJSIPShowContacts": frozenset({"system"}),
    "PJSIPShowEndpoints": frozenset({"system"}),  # qualified static contacts
    "Reload": frozenset({"system", "config"}),  # Module: res_pjsip.so
}
AMI_EVENTS: dict[str, frozenset[str]] = {"ContactStatus": frozenset({"system"})}
# The AorList/ContactList/EndpointList replies of the list actions are written to the session
# that asked (astman_append), so they need no read class.
PANORAMISK_ACTIONS = frozenset({"Login", "Ping"})

# Files that hold credentials: generated per installation, never in asterisk/conf.
GENERATED = {
    "ari.conf": "ari_users.conf",
    "manager.conf": "manager_users.conf",
    "pjsip.conf": "pjsip_lab_auth.conf",
}
SERVICE_GENERATED = ("pjsip_televikar.conf", "extensions_televikar.conf")
SECRET_KEYS = {"secret", "password", "md5_cred", "passwd", "api_key"}


# --- a parser for Asterisk's config files ---------------------------------------------


@dataclass
class Section:
    name: str
    template: bool = False
    bases: tuple[str, ...] = ()
    items: list[tuple[str, str]] = field(default_factory=list)


Reader = Callable[[str], str | None]
_SECTION = re.compile(r"^\[([^\]]+)\](?:\(([^)]*)\))?\s*$")
_INCLUDE = re.compile(r'^#(include|tryinclude)\s+"?([^"\s]+)"?\s*$')


def _strip_comment(line: str) -> str:
    out = re.split(r"(?<!\\);", line, maxsplit=1)[0]
    return out.replace("\\;", ";").strip()


def parse(name: str, read: Reader) -> list[Section]:
    """The sections of file ``name`` (read with ``read``), included files read in place;
    an included file ``read`` does not have (a generated one) counts as empty."""
    sections: list[Section] = []

    def load(text: str, current: Section | None) -> Section | None:
        in_block = False
        for raw in text.splitlines():
            if in_block:  # ;-- block comment --;
                in_block = "--;" not in raw
                continue
            if raw.lstrip().startswith(";--"):
                in_block = "--;" not in raw.split(";--", 1)[1]
                continue
            line = _strip_comment(raw)
            if not line:
                continue
            if include := _INCLUDE.match(line):
                current = load(read(include[2]) or "", current)
                continue
            if header := _SECTION.match(line):
                options = [o.strip() for o in (header[2] or "").split(",") if o.strip()]
                if "+" in options:
                    current = next(s for s in reversed(sections) if s.name == header[1])
                    continue
                current = Section(header[1], "!" in options, tuple(o for o in options if o != "!"))
                sections.append(current)
                continue
            key, sep, value = line.partition("=")
            assert sep and current is not None, f"cannot parse {raw!r}"
            current.items.append((key.strip(), value.removeprefix(">").strip()))
        return current

    text = read(name)
    assert text is not None, f"{name} is missing"
    load(text, None)
    return sections


def effective(
    sections: list[Section], name: str, type_: str | None = None
) -> list[tuple[str, str]]:
    """The items of the (last) non-template section ``name``, its templates' first; with
    ``type_``, of the one with that ``type`` (PJSIP names an endpoint and its AOR alike)."""
    candidates = [
        items
        for i, s in enumerate(sections)
        if s.name == name and not s.template
        for items in [_items(sections, i)]
        if type_ is None or last(items, "type") == type_
    ]
    assert candidates, f"no section [{name}]"
    return candidates[-1]


def _items(sections: list[Section], index: int) -> list[tuple[str, str]]:
    section = sections[index]
    items: list[tuple[str, str]] = []
    for base in section.bases:
        # Asterisk looks the template up among the sections defined before this one.
        found = max(i for i in range(index) if sections[i].name == base)
        items += _items(sections, found)
    return items + section.items


def template(sections: list[Section], name: str) -> list[tuple[str, str]]:
    [index] = [i for i, s in enumerate(sections) if s.name == name and s.template]
    return _items(sections, index)


def last(items: list[tuple[str, str]], key: str) -> str | None:
    values = [v for k, v in items if k == key]
    return values[-1] if values else None


def classes(items: list[tuple[str, str]], key: str) -> frozenset[str]:
    return frozenset(c.strip() for c in (last(items, key) or "").split(",") if c.strip())


def acl(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in items if k in ("deny", "permit")]


def shipped(name: str) -> str | None:
    path = CONF / name
    return path.read_text() if path.is_file() else None


def conf(name: str) -> list[Section]:
    """A shipped file, without the generated files it includes."""
    return parse(name, shipped)


def lab_heredoc(target: str) -> str:
    """What lab.sh writes to ``$etc/<target>``, with its variables filled in."""
    text = LAB_SH.read_text()
    match = re.search(
        rf'cat >"\$etc/{re.escape(target)}" <<EOF\n(.*?)\nEOF\n', text, flags=re.DOTALL
    )
    assert match, f"lab.sh writes no {target}"
    body = match[1].replace("$AMI_USER", AMI_USER).replace("$ARI_USER", ARI_USER)
    return re.sub(r"\$[A-Z_0-9]+", "generated", body)


def test_the_parser_handles_templates_additions_repeats_and_includes() -> None:
    files = {
        "a.conf": "[t](!)\nread = x ; comment\ndeny = 1\n[u](t)\nread = y\n#include b.conf\n"
        "#tryinclude missing.conf\n[u](+)\nexten => 1,1,NoOp(a\\;b)\n",
        "b.conf": "permit = 2\n",
    }
    sections = parse("a.conf", files.get)
    items = effective(sections, "u")
    assert last(items, "read") == "y"
    assert acl(items) == [("deny", "1"), ("permit", "2")]
    assert last(items, "exten") == "1,1,NoOp(a;b)"
    assert [s.name for s in sections if s.template] == ["t"]


# --- listeners: loopback only -------------------------------------------------------------


def test_http_server_for_ari_listens_on_loopback_only() -> None:
    general = effective(conf("http.conf"), "general")
    assert last(general, "bindaddr") == LOOPBACK
    assert last(general, "enablestatic") == "no"
    if last(general, "tlsenable") == "yes":
        assert (last(general, "tlsbindaddr") or "").split(":")[0] == LOOPBACK


def test_ami_listens_on_loopback_only() -> None:
    general = effective(conf("manager.conf"), "general")
    assert last(general, "bindaddr") == LOOPBACK
    assert last(general, "webenabled") == "no"  # no AMI over the HTTP server
    assert last(general, "tlsenable") in (None, "no")
    assert last(general, "displayconnects") == "no"


def test_the_ami_template_refuses_every_source_but_loopback() -> None:
    items = template(conf("manager.conf"), AMI_TEMPLATE)
    # Asterisk applies the rules in order, the last match wins.
    assert acl(items) == [("deny", "0.0.0.0/0.0.0.0"), ("permit", f"{LOOPBACK}/255.255.255.255")]


def test_the_ami_template_grants_exactly_the_classes_the_service_needs() -> None:
    items = template(conf("manager.conf"), AMI_TEMPLATE)
    read, write = classes(items, "read"), classes(items, "write")
    assert read == write == {"system"}

    def covers(read: frozenset[str], write: frozenset[str]) -> bool:
        actions = all(not need or need & write for need in AMI_ACTIONS.values())
        return actions and all(need <= read for need in AMI_EVENTS.values())

    assert covers(read, write)
    # Minimal: without any one of its classes, something the service uses is refused.
    for c in read:
        assert not covers(read - {c}, write), f"read class {c} is not needed"
    for c in write:
        assert not covers(read, write - {c}), f"write class {c} is not needed"


def test_the_service_uses_only_the_ami_actions_and_events_listed_here() -> None:
    sent: set[str] = set()
    events: set[str] = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        sent |= set(re.findall(r"[\"']Action[\"']\s*:\s*[\"'](\w+)[\"']", text))
        events |= set(re.findall(r"register_event\(\s*[\"'](\w+)[\"']", text))
        # CLI commands and AGI over AMI would need `command` / `agi`.
        assert not re.search(r"\.send_(agi_)?command\(", text), path
    assert sent | PANORAMISK_ACTIONS == set(AMI_ACTIONS), "update AMI_ACTIONS and manager.conf"
    assert events == set(AMI_EVENTS), "update AMI_EVENTS and manager.conf"


def test_the_generated_ami_user_gets_the_template_and_nothing_more() -> None:
    generated = lab_heredoc("manager_users.conf")
    sections = parse(
        "manager.conf", lambda n: generated if n == "manager_users.conf" else shipped(n)
    )
    items = effective(sections, AMI_USER)
    assert classes(items, "read") == classes(items, "write") == {"system"}
    assert acl(items) == [("deny", "0.0.0.0/0.0.0.0"), ("permit", f"{LOOPBACK}/255.255.255.255")]
    [user] = [s for s in sections if s.name == AMI_USER]
    assert user.bases == (AMI_TEMPLATE,)
    assert {k for k, _ in user.items} == {"secret"}


def test_settings_point_at_asterisk_on_loopback() -> None:
    fields = Settings.model_fields
    assert urlsplit(str(fields["ari_url"].default)).hostname == LOOPBACK
    assert fields["ami_host"].default == LOOPBACK


async def test_the_fastagi_server_listens_on_loopback_only() -> None:
    async def on_feature(endpoint: str, code: str) -> str:
        return "not-allowed"

    server = FeatureServer(on_feature, port=0)
    async with server:
        assert server._server is not None
        assert {s.getsockname()[0] for s in server._server.sockets} == {LOOPBACK}
    # ... and the service keeps that default.
    calls = [
        node
        for node in ast.walk(ast.parse((SRC / "app.py").read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "FeatureServer"
    ]
    assert calls and all(kw.arg != "host" for call in calls for kw in call.keywords)


async def test_the_control_api_listens_on_loopback_only() -> None:
    async def reload() -> None:
        return None

    runner = await start_control(cast(Any, None), reload, 0)
    try:
        assert {address[0] for address in runner.addresses} == {LOOPBACK}
    finally:
        await runner.cleanup()


# --- credentials: generated per installation, never committed -----------------------------


@pytest.mark.parametrize("path", sorted(CONF.glob("*.conf")), ids=lambda p: p.name)
def test_no_secret_is_committed_in_the_shipped_configuration(path: Path) -> None:
    for section in conf(path.name):
        for key, value in section.items:
            assert key.lower() not in SECRET_KEYS or not value, f"[{section.name}] {key}"


def test_credentials_come_from_files_generated_per_installation() -> None:
    lab = LAB_SH.read_text()
    # One subshell with umask 077 writes every file that holds a secret.
    block = re.search(
        r"\(\n\s+umask 077\n(.*?)\n    \)\n", lab[lab.index("install_config") :], re.S
    )
    assert block, "lab.sh writes the credentials outside a umask 077 subshell"
    for conf_file, generated in GENERATED.items():
        assert re.search(rf"^#include {re.escape(generated)}$", shipped(conf_file) or "", re.M)
        assert f'cat >"$etc/{generated}"' in block[1]
        assert not (CONF / generated).exists(), f"{generated} must not be in asterisk/conf"
    assert 'cat >"$ENV_FILE"' in block[1]
    assert "/dev/urandom" in lab
    for generated in SERVICE_GENERATED:
        assert not (CONF / generated).exists()


def test_the_ari_user_is_generated_with_a_plain_password_from_the_lab() -> None:
    # read_only = no: the app originates, answers, records and bridges (POST/DELETE).
    user = effective(
        parse("ari_users.conf", {"ari_users.conf": lab_heredoc("ari_users.conf")}.get), ARI_USER
    )
    assert last(user, "type") == "user" and last(user, "read_only") == "no"
    assert last(user, "password") == "generated"


# --- SIP: nobody unidentified gets in ------------------------------------------------------


def test_no_guest_endpoint_accepts_unidentified_requests() -> None:
    modules = effective(conf("modules.conf"), "modules")
    assert ("noload", "res_pjsip_endpoint_identifier_anonymous.so") in modules
    pjsip = conf("pjsip.conf")
    order = last(effective(pjsip, "global"), "endpoint_identifier_order") or ""
    assert "anonymous" not in order
    assert not any(s.name == "anonymous" for s in pjsip)


def test_only_agents_phones_subscribe_and_only_to_hints() -> None:
    pjsip = conf("pjsip.conf")
    assert last(effective(pjsip, "carrier", "endpoint"), "allow_subscribe") == "no"
    for agent in ("agent1", "agent9"):
        endpoint = effective(pjsip, agent, "endpoint")
        assert last(endpoint, "allow_subscribe") == "yes"
        assert last(endpoint, "subscribe_context") == STATES_CONTEXT
    # That context is generated with hints only: a subscription can watch, never route.
    hints = render_hints(Directory((Customer(3, "C", "C"),), (Agent(1, "Kari", "kari"),)))
    context = hints.split(f"[{STATES_CONTEXT}]\n", 1)[1].splitlines()
    assert context and all(re.fullmatch(r"exten => [\w-]+,hint,Stasis:[\w-]+", x) for x in context)
    modules = effective(conf("modules.conf"), "modules")
    assert ("noload", "res_pjsip_exten_state.so") not in modules


def test_the_carrier_is_identified_by_its_address_only() -> None:
    carrier = effective(conf("pjsip.conf"), "carrier", "endpoint")
    assert last(carrier, "identify_by") == "ip"


def test_feature_codes_need_an_authenticating_endpoint() -> None:
    agents = effective(conf("extensions.conf"), "from-agents")
    feature = [v for k, v in agents if k == "exten" and v.startswith("_*4[567],")]
    assert feature, "no feature-code extension in from-agents"
    steps = [v for k, v in agents if k == "same"]
    check = next(i for i, v in enumerate(steps) if "PJSIP_ENDPOINT(" in v and ",auth)" in v)
    agi = next(i for i, v in enumerate(steps) if v.startswith("n,AGI(agi://127.0.0.1:"))
    assert check < agi, "the auth check must come before the FastAGI call"


# --- reports and the command line: one customer at a time ----------------------------------


@pytest.mark.parametrize("command", [["calls", "list"], ["sla", "report"]])
def test_what_goes_to_a_customer_is_about_one_customer(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    dates = ["--from", "2026-01-01", "--to", "2026-01-31"]
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, *dates])
    assert "--customer" in capsys.readouterr().err
    args = build_parser().parse_args([*command, "--customer", "A", "--customer", "B", *dates])
    assert args.customer == "B"  # one customer: a second --customer replaces the first
