import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.errors import DomainError, ErrorCode
from app.domain.regions import (
    PROVINCE_PREFIXES,
    ROOT_PATH,
    TenantLevel,
    TenantPath,
    ancestor_paths,
    dom_in,
    parse_tenant_path,
    region_level,
    validate_nbs_code,
    validate_region_code,
)

# --- errors ---------------------------------------------------------------------------------------


def test_domain_error_carries_code_message_field_and_pickles():
    err = DomainError(ErrorCode.BAD_REGION_CODE, "nope", field="region_code")
    assert isinstance(err, ValueError)
    assert str(err) == "nope"
    assert (err.code, err.message, err.field) == ("BAD_REGION_CODE", "nope", "region_code")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.code, copy.message, copy.field) == ("BAD_REGION_CODE", "nope", "region_code")
    assert DomainError("X", "m").field is None


# --- region codes -------------------------------------------------------------------------------


def test_province_prefixes_are_the_real_ones():
    expected = {
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
    } | {71, 81, 82}
    assert {int(p) for p in PROVINCE_PREFIXES} == expected
    assert len(PROVINCE_PREFIXES) == 34


@pytest.mark.parametrize(
    ("code", "level"),
    [
        ("440000", TenantLevel.province),
        ("110000", TenantLevel.province),
        ("820000", TenantLevel.province),
        ("440100", TenantLevel.prefecture),
        ("441900", TenantLevel.prefecture),
        ("110100", TenantLevel.prefecture),
        ("440106", TenantLevel.county),
        ("110105", TenantLevel.county),
        ("429004", TenantLevel.county),
    ],
)
def test_region_level(code, level):
    assert region_level(code) is level
    assert validate_region_code(code) == code


@pytest.mark.parametrize(
    "code",
    [
        "",
        "44000",
        "4400000",
        "44010a",
        " 440000",
        "440000 ",
        "４４００００",  # full-width digits
        "٤٤٠٠٠٠",  # Arabic-Indic digits pass str.isdigit()
        "000000",
        "100000",  # 10 is not a province
        "160000",
        "240000",
        "380000",
        "470000",
        "550000",
        "660000",
        "720000",
        "830000",
        "990000",
        "440006",  # county digits without prefecture digits
        None,
        440000,
    ],
)
def test_bad_region_codes(code):
    with pytest.raises(DomainError) as exc:
        validate_region_code(code)
    assert exc.value.code == ErrorCode.BAD_REGION_CODE
    assert exc.value.field == "region_code"
    with pytest.raises(DomainError):
        region_level(code)


# --- tenant paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "level", "code"),
    [
        ("cn", TenantLevel.national, "cn"),
        ("cn/440000", TenantLevel.province, "440000"),
        ("cn/440000/440100", TenantLevel.prefecture, "440100"),
        ("cn/440000/440100/440106", TenantLevel.county, "440106"),
        ("cn/440000/441900", TenantLevel.prefecture, "441900"),  # Dongguan: no counties
        ("cn/440000/442000", TenantLevel.prefecture, "442000"),  # Zhongshan
        ("cn/110000/110100/110105", TenantLevel.county, "110105"),  # Beijing Chaoyang
        ("cn/420000/429004", TenantLevel.county, "429004"),  # Xiantao, province-administered
        ("cn/460000/469001", TenantLevel.county, "469001"),
        ("cn/410000/419001", TenantLevel.county, "419001"),  # Jiyuan
    ],
)
def test_good_tenant_paths(path, level, code):
    tp = parse_tenant_path(path)
    assert tp.path == path
    assert str(tp) == path
    assert tp.level is level
    assert tp.code == code
    assert tp == TenantPath(tp.codes)


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("", "empty"),
        ("CN", "'CN'"),
        ("/cn", "''"),
        ("cn/", "end with"),
        ("cn/440000/", "end with"),
        ("cn//440000", "empty segment"),
        ("cn/440000//440100", "empty segment"),
        (" cn", "whitespace"),
        ("cn /440000", "whitespace"),
        ("cn/440000\n", "whitespace"),
        ("cn/440000\t/440100", "whitespace"),
        ("cn/440000/440100/440106\u3000", "whitespace"),
        ("440000", "'440000'"),
        ("china/440000", "'china'"),
        ("cn/cn", "'cn'"),
        ("cn/44000", "'44000'"),
        ("cn/4400001", "'4400001'"),
        ("cn/44000x", "'44000x'"),
        ("cn/100000", "'100000'"),  # no such province prefix
        ("cn/440100", "'440100'"),  # prefecture directly under root
        ("cn/440106", "'440106'"),  # county directly under root
        ("cn/440000/450100", "'450100'"),  # Guangxi city under Guangdong
        ("cn/440000/440000", "'440000'"),  # province under province
        ("cn/440000/450000", "'450000'"),
        ("cn/440000/440106", "'440106'"),  # county must sit under its prefecture
        ("cn/440000/440100/440206", "'440206'"),  # county of another prefecture
        ("cn/440000/440100/440200", "'440200'"),  # prefecture under prefecture
        ("cn/440000/440100/440100", "'440100'"),
        ("cn/440000/440100/440106/440106", "'440106'"),  # below a county
        ("cn/440000/440100/440106/440106001", "'440106001'"),
        ("cn/420000/429000", "'429000'"),  # grouping code is not a department
        ("cn/420000/429000/429004", "'429000'"),
        ("cn/420000/439004", "'439004'"),  # province-administered county of another province
        ("cn/420000/420100/429004", "'429004'"),
        ("cn/440000/440006", "'440006'"),
    ],
)
def test_bad_tenant_paths_name_the_bad_segment(path, needle):
    with pytest.raises(DomainError) as exc:
        parse_tenant_path(path)
    assert exc.value.code == ErrorCode.BAD_TENANT_PATH
    assert needle in exc.value.message


def test_parse_tenant_path_refuses_non_strings():
    with pytest.raises(DomainError) as exc:
        parse_tenant_path(None)  # type: ignore[arg-type]
    assert exc.value.code == ErrorCode.BAD_TENANT_PATH


def test_tenant_path_constructor_validates():
    with pytest.raises(DomainError) as exc:
        TenantPath(("440000", "450100"))
    assert exc.value.code == ErrorCode.BAD_TENANT_PATH
    with pytest.raises(DomainError):
        TenantPath("440000")  # type: ignore[arg-type]
    assert TenantPath(["440000", "440100"]).codes == ("440000", "440100")  # type: ignore[arg-type]
    assert TenantPath() == ROOT_PATH
    assert ROOT_PATH.path == "cn"


def test_parent_and_ancestors():
    tianhe = parse_tenant_path("cn/440000/440100/440106")
    assert tianhe.parent == parse_tenant_path("cn/440000/440100")
    assert [a.path for a in tianhe.ancestors()] == ["cn", "cn/440000", "cn/440000/440100"]
    assert ROOT_PATH.parent is None
    assert ROOT_PATH.ancestors() == []
    assert parse_tenant_path("cn/440000").parent == ROOT_PATH


def test_ancestry_relations():
    gd = parse_tenant_path("cn/440000")
    gz = parse_tenant_path("cn/440000/440100")
    tianhe = parse_tenant_path("cn/440000/440100/440106")
    sz = parse_tenant_path("cn/440000/440300")
    assert ROOT_PATH.is_ancestor_of(tianhe)
    assert gd.is_ancestor_of(gz) and gd.is_ancestor_of(tianhe)
    assert not gz.is_ancestor_of(gz)
    assert not tianhe.is_ancestor_of(gz)  # never the other way round
    assert not sz.is_ancestor_of(tianhe)
    assert gz.contains(gz) and gz.contains(tianhe)
    assert not gz.contains(gd)
    assert not sz.contains(tianhe)


def test_child():
    gd = parse_tenant_path("cn/440000")
    assert gd.child("440100").path == "cn/440000/440100"
    assert ROOT_PATH.child("110000").path == "cn/110000"
    for bad in ("450100", "440106", "x", "440000"):
        with pytest.raises(DomainError) as exc:
            gd.child(bad)
        assert exc.value.code == ErrorCode.BAD_TENANT_PATH
    with pytest.raises(DomainError):
        parse_tenant_path("cn/440000/440100/440106").child("440106")


def test_tenant_path_is_frozen_and_hashable():
    tp = parse_tenant_path("cn/440000")
    assert {tp, parse_tenant_path("cn/440000")} == {tp}
    with pytest.raises(AttributeError):
        tp.codes = ()  # type: ignore[misc]


# --- hot-path helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("cn", "cn", True),
        ("cn/440000", "cn", True),
        ("cn/440000/440100/440106", "cn/440000", True),
        ("cn/440000/440100", "cn/440000/440100", True),
        ("cn/4400001", "cn/440000", False),
        ("cn/440000", "cn/440000/440100", False),
        ("cn", "cn/440000", False),
        ("cn/440000/440100", "cn/440000/440300", False),
        ("cnx", "cn", False),
        ("cn/450000", "cn/440000", False),
    ],
)
def test_dom_in(a, b, expected):
    assert dom_in(a, b) is expected


_segment = st.text(alphabet="0123456789cn/", min_size=0, max_size=14)


@given(_segment, _segment)
def test_dom_in_matches_its_definition(a, b):
    assert dom_in(a, b) == (a == b or a.startswith(b + "/"))


def test_ancestor_paths():
    assert ancestor_paths("cn") == ["cn"]
    assert ancestor_paths("cn/440000") == ["cn", "cn/440000"]
    assert ancestor_paths("cn/440000/440100") == ["cn", "cn/440000", "cn/440000/440100"]
    assert ancestor_paths("cn/440000/440100/440106") == [
        "cn",
        "cn/440000",
        "cn/440000/440100",
        "cn/440000/440100/440106",
    ]


_paths = st.sampled_from(
    [
        "cn",
        "cn/440000",
        "cn/440000/440100",
        "cn/440000/440100/440106",
        "cn/440000/440300/440305",
        "cn/420000/429004",
        "cn/110000/110100/110105",
    ]
)


@given(_paths, _paths)
def test_ancestor_paths_agree_with_dom_in_and_tenant_path(a, b):
    assert (b in ancestor_paths(a)) == dom_in(a, b)
    ta, tb = parse_tenant_path(a), parse_tenant_path(b)
    assert tb.contains(ta) == dom_in(a, b)
    assert ancestor_paths(a) == [*(x.path for x in ta.ancestors()), a]


# --- NBS codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "county"),
    [
        ("440106001", None),
        ("440106001", "440106"),
        ("440106001001", "440106"),
        ("441900003", "441900"),  # Dongguan town, prefecture without counties
        ("429004100", "429004"),
        ("110105011204", None),
    ],
)
def test_good_nbs_codes(code, county):
    assert validate_nbs_code(code, county) == code


@pytest.mark.parametrize(
    ("code", "county"),
    [
        ("", None),
        ("44010600", None),  # 8 digits
        ("4401060010", None),  # 10 digits
        ("44010600100", None),  # 11 digits
        ("4401060010011", None),  # 13 digits
        ("44010600a", None),
        (" 440106001", None),
        ("４４０１０６００１", None),
        ("440000001", None),  # province head
        ("429000001", None),  # grouping head
        ("100106001", None),  # no such province
        ("440006001", None),  # county digits without prefecture
        ("440106000", None),  # township 000
        ("440106000001", None),
        ("440106001000", None),  # village 000
        ("440106001", "440105"),  # another county
        ("440106001001", "440100"),
        (None, None),
        (440106001, None),
    ],
)
def test_bad_nbs_codes(code, county):
    with pytest.raises(DomainError) as exc:
        validate_nbs_code(code, county)
    assert exc.value.code == ErrorCode.BAD_NBS_CODE
    assert exc.value.field == "nbs_code"
