"""Consul's ?filter= language: grammar, semantics, validation and error messages.

Expected messages marked "as Consul" are copied from Consul issues (#7338,
#9441, #6467) or follow go-bexpr v0.1.2's validate.go / coerce.go word for word.
"""

from __future__ import annotations

from typing import Any

import pytest

from waypost.core.filter_schemas import (
    AGENT_MEMBER_SCHEMA,
    AGENT_SERVICE_SCHEMA,
    CATALOG_NODE_SCHEMA,
    CATALOG_SERVICE_SCHEMA,
    ENDPOINT_SCHEMAS,
    HEALTH_CHECK_SCHEMA,
    HEALTH_SERVICE_SCHEMA,
)
from waypost.core.filterexpr import (
    FilterError,
    ListOf,
    MapOf,
    Schema,
    apply_filter,
    compile_filter,
)

PREFIX = "Failed to create boolean expression evaluator: "

REDIS: dict[str, Any] = {
    "ID": "redis1",
    "Service": "redis",
    "Tags": ["primary", "production"],
    "Meta": {"env": "production", "version": "1.2.3", "key with spaces": "yes"},
    "Port": 8080,
    "Address": "10.0.0.1",
    "TaggedAddresses": {"lan": {"Address": "10.0.0.1", "Port": 8080}},
    "Weights": {"Passing": 10, "Warning": 1},
    "EnableTagOverride": True,
}
WEB: dict[str, Any] = {"ID": "web1", "Service": "web", "Port": 80}  # sparse wire


def check(name: str, status: str) -> dict[str, Any]:
    return {"Node": "n1", "CheckID": name, "Name": name, "Status": status}


def entry(*checks: dict[str, Any]) -> dict[str, Any]:
    return {
        "Node": {"Node": "n1", "Meta": {"rack": "r1"}},
        "Service": {"Service": "web", "Tags": ["v1"], "Proxy": None},
        "Checks": list(checks),
    }


def matches(expression: str, item: object, schema: Schema | None = None) -> bool:
    return compile_filter(expression, schema).matches(item)


def error(expression: str, schema: Schema | None = None) -> str:
    with pytest.raises(FilterError) as caught:
        compile_filter(expression, schema)
    return str(caught.value)


# --- operators -------------------------------------------------------------


@pytest.mark.parametrize("schema", [None, AGENT_SERVICE_SCHEMA])
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('Service == "redis"', True),
        ('Service == "web"', False),
        ('Service != "web"', True),
        ('Service != "redis"', False),
        ('"primary" in Tags', True),
        ('"canary" in Tags', False),
        ('"canary" not in Tags', True),
        ('Tags contains "production"', True),
        ('Tags not contains "production"', False),
        ('"dis" in Service', True),  # substring on a string
        ('Service contains "edi"', True),
        ('Service not contains "x"', True),
        ('"env" in Meta', True),  # key presence on a map
        ('"production" in Meta', False),
        ('Meta not contains "team"', True),
        ("Tags is not empty", True),
        ("Tags is empty", False),
        ("Meta is empty", False),
        ('Service matches "^re"', True),
        ('Service matches "^web"', False),
        ('Service not matches "^web"', True),
        ('Meta.env == "production"', True),
        ('Meta["key with spaces"] == "yes"', True),
        ('Meta["env"] != "qa"', True),
        ('TaggedAddresses.lan.Address == "10.0.0.1"', True),
        ("TaggedAddresses.lan.Port == 8080", True),
        ("Weights.Passing == 10", True),
        ("Port == 8080", True),
        ("Port != 8080", False),
        ("EnableTagOverride == true", True),
    ],
)
def test_operator_answers_as_go_bexpr(
    expression: str, expected: bool, schema: Schema | None
) -> None:
    assert matches(expression, REDIS, schema) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # `and` binds tighter than `or`; `not` tighter than both.
        ('Service == "web" or Service == "redis" and Port == 1', False),
        ('(Service == "web" or Service == "redis") and Port == 8080', True),
        ('Service == "redis" or Service == "web" and Port == 1', True),
        ('not Service == "web" and Port == 8080', True),
        ('not (Service == "redis" and Port == 1)', True),
        ('not not Service == "redis"', True),
        ('not not not Service == "redis"', False),
        ('((Service == "redis"))', True),
        ('Port == 1 or Port == 2 or Port == 3 or Service == "redis"', True),
        ('Service == "redis" and Port == 8080 and Tags contains "primary"', True),
        ('Service == "redis" and Port == 8080 and Tags contains "canary"', False),
    ],
)
def test_boolean_precedence_follows_go_bexpr(expression: str, expected: bool) -> None:
    assert matches(expression, REDIS, AGENT_SERVICE_SCHEMA) is expected


@pytest.mark.parametrize(
    "expression",
    [
        "Port==8080",
        "  Port ==8080  ",
        "\tPort\n==\r\n8080\n",
        "( Port == 8080 )",
        "Service == redis",  # a bare word is a value
        "Service == `redis`",
        'Meta.version == "1.2.3"',
        "Meta.version == `1.2.3`",
        'Meta[ "env" ] == production',
        'Service == "\\x72edis"',
        'Service == "\\162edis"',
        'Service == "\\u0072edis"',
        'Service == "\\U00000072edis"',
        'Port == "8080"',  # quoting does not change the type
        'Port == "0x1F90"',  # strconv.ParseInt base 0
        'Port == "0o17620"',
        'Port == "017620"',  # a leading 0 is octal, as in Go
        'Port == "8_080"',
        "EnableTagOverride == T",
        "EnableTagOverride == 1",
        'EnableTagOverride == "TRUE"',
    ],
)
def test_value_spellings_that_go_bexpr_accepts(expression: str) -> None:
    assert matches(expression, REDIS, AGENT_SERVICE_SCHEMA)


def test_escapes_in_double_quotes_are_go_escapes_and_backticks_are_raw() -> None:
    item = {"Meta": {"a": "tab\there", "b": "back\\slash", "c": "é"}}
    assert matches('Meta.a == "tab\\there"', item)
    assert matches("Meta.b == `back\\slash`", item)
    assert matches('Meta.b == "back\\\\slash"', item)
    assert matches('Meta.c == "\\u00e9"', item)
    assert matches('Meta.c == "\\xc3\\xa9"', item)  # bytes, as Go strings hold


def test_raw_strings_drop_carriage_returns_as_go_does() -> None:
    assert matches("Meta.a == `x\r\ny`", {"Meta": {"a": "x\ny"}})


def test_numbers_and_words_compare_as_text_against_strings() -> None:
    item = {"Meta": {"v": "1.5", "n": "-3", "w": "a.b"}}
    assert matches("Meta.v == 1.5", item)
    assert matches("Meta.n == -3", item)
    assert matches("Meta.w == a.b", item)  # a selector-shaped value is its text


# --- semantics on data -------------------------------------------------------


@pytest.mark.parametrize("schema", [None, AGENT_SERVICE_SCHEMA])
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('Meta.nope == "x"', False),
        ('Meta.nope != "x"', True),
        ('"x" in Meta.nope', False),
        ('"x" not in Meta.nope', True),
        # As go-bexpr's "Missing key in map tests".
        ('Meta.nope matches "x"', False),
        ('Meta.nope not matches "x"', True),
        ("TaggedAddresses.wan.Port == 80", False),
        ("TaggedAddresses.wan.Port != 80", True),
    ],
)
def test_missing_map_key_is_not_an_error(
    expression: str, expected: bool, schema: Schema | None
) -> None:
    assert matches(expression, REDIS, schema) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('Kind == ""', True),
        ("Port != 0", True),
        ("Weights.Passing == 0", True),
        ("EnableTagOverride == false", True),
        ("Tags is empty", True),
        ("Meta is empty", True),
        ('"x" in Tags', False),
        ('Proxy.DestinationServiceName == ""', True),
        ("Proxy.Upstreams is empty", True),
        ('Proxy.Upstreams.DestinationName != "db"', False),  # no element
    ],
)
def test_fields_the_wire_omits_read_as_go_zero_values(
    expression: str, expected: bool
) -> None:
    assert matches(expression, WEB, AGENT_SERVICE_SCHEMA) is expected


def test_null_values_read_as_zero_values_with_a_schema() -> None:
    item = {"ServiceTaggedAddresses": None, "ServiceTags": None, "ServiceName": None}
    assert matches("ServiceTaggedAddresses is empty", item, CATALOG_SERVICE_SCHEMA)
    assert matches('"x" not in ServiceTags', item, CATALOG_SERVICE_SCHEMA)
    assert matches('ServiceName == ""', item, CATALOG_SERVICE_SCHEMA)


@pytest.mark.parametrize(
    ("statuses", "equal", "not_equal"),
    [
        (["passing", "passing"], True, False),
        (["passing", "critical"], True, True),  # any element, each operator
        (["critical"], False, True),
        ([], False, False),  # an empty slice is false for every operator
    ],
)
def test_selector_through_a_list_of_structs_means_any_element(
    statuses: list[str], equal: bool, not_equal: bool
) -> None:
    item = entry(*(check(f"c{i}", s) for i, s in enumerate(statuses)))
    for schema in (HEALTH_SERVICE_SCHEMA, None):
        assert matches('Checks.Status == "passing"', item, schema) is equal
        assert matches('Checks.Status != "passing"', item, schema) is not_equal


def test_list_of_structs_supports_emptiness_and_nested_lists() -> None:
    item = entry(check("a", "passing") | {"ServiceTags": ["blue"]})
    schema = HEALTH_SERVICE_SCHEMA
    assert matches("Checks is not empty", item, schema)
    assert matches('Checks.ServiceTags contains "blue"', item, schema)
    assert matches("Checks is empty", entry(), schema)
    assert matches('Node.Meta.rack == "r1"', item, schema)
    assert matches('Service.Proxy.Mode == ""', item, schema)


def test_schemaless_filters_read_types_from_the_data() -> None:
    assert matches("Port == 8080", REDIS)
    assert matches('Port == "0x1F90"', REDIS)
    assert matches("EnableTagOverride == true", REDIS)
    assert matches("Meta is not empty", REDIS)
    assert matches("Missing is empty", REDIS)
    assert matches('"v1" in Service.Tags', entry())


def test_schemaless_filter_raises_on_a_value_the_data_type_refuses() -> None:
    f = compile_filter("Port == abc")
    assert f.matches({"Port": "abc"})  # a string field takes any text
    with pytest.raises(FilterError, match=r'strconv\.ParseInt: parsing "abc"'):
        f.matches({"Port": 8080})


def test_schemaless_filter_raises_when_selecting_into_a_scalar() -> None:
    with pytest.raises(FilterError, match=r'Selector "Service\.Name" is not valid'):
        compile_filter('Service.Name == "x"').matches(REDIS)


# --- validation against a schema --------------------------------------------


@pytest.mark.parametrize(
    ("expression", "schema", "message"),
    [
        ('Foo == "x"', AGENT_SERVICE_SCHEMA, 'Selector "Foo" is not valid'),
        ('service == "x"', AGENT_SERVICE_SCHEMA, 'Selector "service" is not valid'),
        (
            'Service.Foo == "x"',
            HEALTH_SERVICE_SCHEMA,
            'Selector "Service.Foo" is not valid',
        ),
        ('Meta.a.b == "x"', AGENT_SERVICE_SCHEMA, 'Selector "Meta.a.b" is not valid'),
        ('Tags.x == "x"', AGENT_SERVICE_SCHEMA, 'Selector "Tags.x" is not valid'),
        # Consul tags AgentService.Datacenter `bexpr:"-"`.
        (
            'Datacenter == "dc1"',
            AGENT_SERVICE_SCHEMA,
            'Selector "Datacenter" is not valid',
        ),
        (
            'Tags == "x"',
            AGENT_SERVICE_SCHEMA,
            'Invalid match operator "Equal" for selector "Tags"',
        ),
        (
            "Service is empty",
            AGENT_SERVICE_SCHEMA,
            'Invalid match operator "Is Empty" for selector "Service"',
        ),
        (
            'Meta == "x"',
            AGENT_SERVICE_SCHEMA,
            'Invalid match operator "Equal" for selector "Meta"',
        ),
        (
            "Weights == 1",
            AGENT_SERVICE_SCHEMA,
            'Invalid match operator "Equal" for selector "Weights"',
        ),
        (
            '"1" in Port',
            AGENT_SERVICE_SCHEMA,
            'Invalid match operator "In" for selector "Port"',
        ),
        (
            'Port matches "8"',
            AGENT_SERVICE_SCHEMA,
            'Invalid match operator "Matches" for selector "Port"',
        ),
        (
            'Checks contains "x"',
            HEALTH_SERVICE_SCHEMA,
            'Invalid match operator "In" for selector "Checks"',
        ),
        (
            "Port == abc",
            AGENT_SERVICE_SCHEMA,
            'Failed to coerce value "abc" for selector "Port": '
            'strconv.ParseInt: parsing "abc": invalid syntax',
        ),
        (
            "Port == 99999999999999999999",
            AGENT_SERVICE_SCHEMA,
            'Failed to coerce value "99999999999999999999" for selector "Port": '
            'strconv.ParseInt: parsing "99999999999999999999": value out of range',
        ),
        (
            "Port == 70000",
            AGENT_MEMBER_SCHEMA,
            'Failed to coerce value "70000" for selector "Port": '
            'strconv.ParseUint: parsing "70000": value out of range',
        ),
        (
            "EnableTagOverride == yes",
            AGENT_SERVICE_SCHEMA,
            'Failed to coerce value "yes" for selector "EnableTagOverride": '
            'strconv.ParseBool: parsing "yes": invalid syntax',
        ),
        (
            'Port == "1__0"',
            AGENT_SERVICE_SCHEMA,
            'Failed to coerce value "1__0" for selector "Port": '
            'strconv.ParseInt: parsing "1__0": invalid syntax',
        ),
    ],
)
def test_schema_rejects_what_consul_rejects(
    expression: str, schema: Schema, message: str
) -> None:
    assert error(expression, schema) == PREFIX + message


def test_validation_reports_the_first_bad_match_from_the_left() -> None:
    message = error("Foo == 1 or Port == abc", AGENT_SERVICE_SCHEMA)
    assert message == PREFIX + 'Selector "Foo" is not valid'


def test_invalid_regular_expression_is_rejected_at_compile_time() -> None:
    for schema in (AGENT_SERVICE_SCHEMA, None):
        message = error('Service matches "("', schema)
        assert message.startswith(PREFIX + 'Failed to compile regular expression "(": ')


def test_regular_expression_syntax_python_would_misread_is_rejected() -> None:
    assert "[[:alpha:]]" in error('Service matches "[[:alpha:]]"', AGENT_SERVICE_SCHEMA)


# --- syntax errors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        # As Consul (issue #7338).
        (
            "foo",
            '1:4 (3): no match found, expected: "!=", ".", "==", "[", '
            "[ \\t\\r\\n] or [a-zA-Z0-9_]",
        ),
        # As Consul (issue #9441).
        ("Address == 10.10.10.10 ", '1:17 (16): rule "number": Invalid number literal'),
        # The expected set of issue #6467, at this expression's own position.
        (
            "Node==host-name",
            '1:11 (10): no match found, expected: ".", "[", '
            "[ \\t\\r\\n], [a-zA-Z0-9_] or EOF",
        ),
        ('(Service == "x"', '1:16 (15): rule "grouping": Unmatched parentheses'),
        ('"x" in 5', '1:8 (7): rule "match": Invalid selector'),
        ('Service == "abc', '1:16 (15): rule "string": Unterminated string literal'),
        ('Meta["a" == "x"', '1:10 (9): rule "index": Unclosed index expression'),
        ("Meta[a] == x", '1:6 (5): rule "index": Invalid index'),
        ("Port == 080", '1:10 (9): rule "number": Invalid number literal'),
        # The grammar ends a "..." string at the next quote: no \" escape.
        ('Service == "a\\"b"', '1:12 (11): rule "string": invalid syntax'),
        ('Service == "\\\'"', '1:12 (11): rule "string": invalid syntax'),
        ('Service == "\\q"', '1:12 (11): rule "string": invalid syntax'),
        (
            "Service == 'x'",
            '1:12 (11): no match found, expected: "-", "0", "\\"", '
            '"`", [ \\t\\r\\n], [1-9] or [a-zA-Z]',
        ),
        # Keywords need whitespace on both sides.
        (
            'not(Service == "x")',
            '1:4 (3): no match found, expected: "!=", ".", '
            '"==", "[", [ \\t\\r\\n] or [a-zA-Z0-9_]',
        ),
        (
            "Port == 1 and(Port == 2)",
            "1:14 (13): no match found, expected: [ \\t\\r\\n]",
        ),
        ("Port == 1 or", "1:13 (12): no match found, expected: [ \\t\\r\\n]"),
        (
            "  ",
            '1:3 (2): no match found, expected: "(", "-", "0", "\\"", "`", '
            '"not", [ \\t\\r\\n], [1-9] or [a-zA-Z]',
        ),
        # Line and column count runes from 1; the offset counts UTF-8 bytes.
        ('Service == "a"\nand', "2:4 (18): no match found, expected: [ \\t\\r\\n]"),
        (
            'Service == "é" x',
            '1:16 (16): no match found, expected: "and", "or", [ \\t\\r\\n] or EOF',
        ),
    ],
)
def test_syntax_error_says_where_like_pigeon(expression: str, message: str) -> None:
    assert error(expression) == PREFIX + message


def test_every_predicate_error_is_reported_one_per_line() -> None:
    assert error('Meta["abc') == PREFIX + (
        '1:10 (9): rule "string": Unterminated string literal\n'
        '1:6 (5): rule "index": Invalid index'
    )


def test_deep_nesting_is_a_filter_error_not_a_crash() -> None:
    assert error("(" * 400 + "Port == 1" + ")" * 400).endswith("nested too deeply")


def test_nested_groups_parse_in_linear_time() -> None:
    """Without memoisation a broken group 40 deep takes 2**40 steps."""
    assert "no match found" in error("(" * 40 + "Port == " + ")" * 40)
    assert matches("(" * 40 + "Port == 8080" + ")" * 40, REDIS)


def test_long_or_chains_do_not_recurse() -> None:
    expression = " or ".join(f"Port == {i}" for i in range(3000))
    assert matches(expression, {"Port": 2999}, AGENT_SERVICE_SCHEMA)


# --- Consul's documented examples ---------------------------------------------


def test_agent_services_example_from_consul_filtering_docs() -> None:
    services = {
        "redis1": {
            "ID": "redis1",
            "Tags": ["primary", "production"],
            "Meta": {"env": "production", "foo": "bar"},
        },
        "redis2": {
            "ID": "redis2",
            "Tags": ["secondary", "production"],
            "Meta": {"env": "production", "foo": "bar"},
        },
        "redis3": {"ID": "redis3", "Tags": ["primary", "qa"], "Meta": {"env": "qa"}},
    }
    f = compile_filter('Meta.env == "qa"', AGENT_SERVICE_SCHEMA)
    assert [k for k, v in services.items() if f.matches(v)] == ["redis3"]
    primary = apply_filter(
        'Tags contains "primary"', services.values(), AGENT_SERVICE_SCHEMA
    )
    assert [s["ID"] for s in primary] == ["redis1", "redis3"]


def test_catalog_and_health_examples_from_consul_docs() -> None:
    nodes = [
        {"Node": "node-1", "NodeMeta": {"os": "darwin"}, "ServiceTags": ["tag"]},
        {
            "Node": "node-2",
            "NodeMeta": {"os": "linux"},
            "ServiceTags": ["test", "tag"],
            "ServiceMeta": {"version": "1.4"},
        },
        {
            "Node": "node-4",
            "NodeMeta": {"os": "freebsd"},
            "ServiceTags": [],
            "ServiceMeta": {"version": "21"},
        },
    ]
    linux = apply_filter('NodeMeta.os == "linux"', nodes, CATALOG_SERVICE_SCHEMA)
    assert [n["Node"] for n in linux] == ["node-2"]
    tagged = apply_filter('"test" in ServiceTags', nodes, CATALOG_SERVICE_SCHEMA)
    assert [n["Node"] for n in tagged] == ["node-2"]
    v1 = apply_filter(
        'ServiceMeta.version matches "^1\\\\."', nodes, CATALOG_SERVICE_SCHEMA
    )
    assert [n["Node"] for n in v1] == ["node-2"]
    checks = [
        {"CheckID": "node-health", "ServiceName": ""},
        {"CheckID": "svc-web-health", "ServiceName": "web"},
    ]
    named = apply_filter('ServiceName != ""', checks, HEALTH_CHECK_SCHEMA)
    assert [c["CheckID"] for c in named] == ["svc-web-health"]


def test_health_service_tags_example() -> None:
    assert matches('Service.Tags contains "v1"', entry(), HEALTH_SERVICE_SCHEMA)
    assert not matches(
        'Service.Tags contains "primary"', entry(), HEALTH_SERVICE_SCHEMA
    )


# --- public API and schemas ---------------------------------------------------


def test_compiled_filters_are_cached_per_expression_and_schema() -> None:
    first = compile_filter('ID == "x"', AGENT_SERVICE_SCHEMA)
    assert compile_filter('ID == "x"', AGENT_SERVICE_SCHEMA) is first
    assert compile_filter('ID == "x"', CATALOG_NODE_SCHEMA) is not first
    assert compile_filter('ID == "x"') is not first


def test_empty_expression_is_no_filter_as_in_consul() -> None:
    f = compile_filter("", AGENT_SERVICE_SCHEMA)
    assert f.matches_everything
    assert f.filter([REDIS, WEB]) == [REDIS, WEB]
    assert not compile_filter("Port == 1").matches_everything


def test_filter_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no match found"):
        compile_filter("==")


def test_schema_refuses_unknown_field_kinds() -> None:
    with pytest.raises(ValueError, match=r"X\.Y: unknown field kind 'text'"):
        Schema({"Y": "text"}, name="X")


def test_schema_kinds_cover_lists_and_maps_of_structs_and_numbers() -> None:
    schema = Schema(
        {
            "Items": ListOf(element={"Size": "uint8", "Ratio": "float"}),
            "ByName": MapOf(value={"On": "bool"}),
            "Counts": "list[int]",
            "Labels": "map[string]string",
        },
        name="Custom",
    )
    item = {
        "Items": [{"Size": 3, "Ratio": 0.5}],
        "ByName": {"a": {"On": True}},
        "Counts": [1, 2],
        "Labels": {"k": "v"},
    }
    assert matches("Items.Size == 3 and Items.Ratio == 0.5", item, schema)
    assert matches("ByName.a.On == true and ByName.b.On != true", item, schema)
    assert matches('2 in Counts and "0x2" in Counts', item, schema)
    assert matches("Labels.k == v", item, schema)
    assert "strconv.ParseFloat" in error('Items.Ratio == "half"', schema)
    assert "strconv.ParseUint" in error("Items.Size == 256", schema)


STRING_OPS = frozenset({"Equal", "Not Equal", "In", "Not In", "Matches", "Not Matches"})
NUMBER_OPS = frozenset({"Equal", "Not Equal"})
MAP_OPS = frozenset({"Is Empty", "Is Not Empty", "In", "Not In"})
LIST_OPS = MAP_OPS


def test_catalog_nodes_selectors_match_consul_docs_table() -> None:
    assert CATALOG_NODE_SCHEMA.selectors() == {
        "Address": STRING_OPS,
        "Datacenter": STRING_OPS,
        "ID": STRING_OPS,
        "Meta": MAP_OPS,
        "Meta.<any>": STRING_OPS,
        "Node": STRING_OPS,
        "TaggedAddresses": MAP_OPS,
        "TaggedAddresses.<any>": STRING_OPS,
    }


def test_agent_services_selectors_match_consul_docs_table() -> None:
    proxy_strings = [
        "DestinationServiceID",
        "DestinationServiceName",
        "LocalServiceAddress",
        "Mode",
        "MeshGateway.Mode",
        "Upstreams.Datacenter",
        "Upstreams.DestinationName",
        "Upstreams.DestinationNamespace",
        "Upstreams.DestinationType",
        "Upstreams.LocalBindAddress",
        "Upstreams.MeshGateway.Mode",
    ]
    proxy_numbers = [
        "LocalServicePort",
        "TransparentProxy.OutboundListenerPort",
        "Upstreams.LocalBindPort",
    ]
    expected = {
        "Address": STRING_OPS,
        "Connect.Native": NUMBER_OPS,
        "EnableTagOverride": NUMBER_OPS,
        "ID": STRING_OPS,
        "Kind": STRING_OPS,
        "Meta": MAP_OPS,
        "Meta.<any>": STRING_OPS,
        "Port": NUMBER_OPS,
        "Proxy.Upstreams": frozenset({"Is Empty", "Is Not Empty"}),
        "Service": STRING_OPS,
        "TaggedAddresses": MAP_OPS,
        "TaggedAddresses.<any>.Address": STRING_OPS,
        "TaggedAddresses.<any>.Port": NUMBER_OPS,
        "Tags": LIST_OPS,
        "Weights.Passing": NUMBER_OPS,
        "Weights.Warning": NUMBER_OPS,
        **{f"Proxy.{name}": STRING_OPS for name in proxy_strings},
        **{f"Proxy.{name}": NUMBER_OPS for name in proxy_numbers},
    }
    assert AGENT_SERVICE_SCHEMA.selectors() == expected


def test_health_check_selectors_match_consul_docs_table_plus_type() -> None:
    table = HEALTH_CHECK_SCHEMA.selectors()
    assert table.pop("ServiceTags") == LIST_OPS
    assert table == dict.fromkeys(
        [
            "CheckID",
            "Name",
            "Node",
            "Notes",
            "Output",
            "ServiceID",
            "ServiceName",
            "Status",
            "Type",
        ],
        STRING_OPS,
    )


def test_catalog_service_selectors_prefix_the_service_fields() -> None:
    table = CATALOG_SERVICE_SCHEMA.selectors()
    assert table["NodeMeta.<any>"] == STRING_OPS
    assert table["ServiceTaggedAddresses.<any>.Port"] == NUMBER_OPS
    assert table["ServiceProxy.Upstreams.LocalBindPort"] == NUMBER_OPS
    assert table["ServiceWeights.Warning"] == NUMBER_OPS
    assert "Meta" not in table  # a ServiceNode names it NodeMeta


def test_every_endpoint_has_a_schema_with_selectors() -> None:
    assert all(schema.selectors() for schema in ENDPOINT_SCHEMAS.values())
    assert ENDPOINT_SCHEMAS["/v1/health/service/{service}"] is HEALTH_SERVICE_SCHEMA
