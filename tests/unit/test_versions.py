"""Chart version resolution: Helm's (Masterminds') constraint dialect, prereleases, junk versions."""

from __future__ import annotations

import pytest

from kubemart.domain.versions import (
    InvalidConstraint,
    is_valid_constraint,
    parse_constraint,
    resolve_version,
    sort_versions_desc,
)

# A chart's history as a catalog lists it: out of order, with prereleases and junk.
CATALOG = [
    "1.2.0",
    "0.9.1",
    "1.0.0",
    "1.2.5",
    "1.3.0-rc.1",
    "1.3.0",
    "1.4.2",
    "2.0.0-beta.1",
    "2.0.0",
    "2.1.0",
    "3.0.0-alpha.1",
    "latest",
    "",
    "1.2.3.4",
    "2.1.0-",
]


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        pytest.param(None, "2.1.0", id="none means newest stable"),
        pytest.param("", "2.1.0", id="empty means newest stable"),
        pytest.param("   ", "2.1.0", id="blank means newest stable"),
        pytest.param("*", "2.1.0", id="star is any stable"),
        pytest.param("1.2.5", "1.2.5", id="exact version"),
        pytest.param("=1.2.5", "1.2.5", id="exact version with equals"),
        pytest.param("v1.2.5", "1.2.5", id="v prefix on exact version"),
        pytest.param("^1.2", "1.4.2", id="caret picks newest minor"),
        pytest.param("^1.2.5", "1.4.2", id="caret from patch picks newest minor"),
        pytest.param("^v1.2", "1.4.2", id="v prefix after operator"),
        pytest.param("^0.9", "0.9.1", id="caret below 1.0 stays in minor"),
        pytest.param("~1.2.0", "1.2.5", id="tilde picks newest patch"),
        pytest.param("~1.2", "1.2.5", id="tilde on partial version"),
        pytest.param("~>1.2.0", "1.2.5", id="tilde arrow is tilde"),
        pytest.param("~1", "1.4.2", id="tilde on major only"),
        pytest.param(">=1 <2", "1.4.2", id="space is and"),
        pytest.param(">=1.0, <2.0", "1.4.2", id="comma is and"),
        pytest.param(">= 1.0 , < 1.3", "1.2.5", id="spaces around operators and comma"),
        pytest.param(">1.2", "2.1.0", id="greater than partial skips its minor"),
        pytest.param(">1.2 <2", "1.4.2", id="greater than partial within major"),
        pytest.param("<1.3", "1.2.5", id="less than"),
        pytest.param("<=1.2", "1.2.5", id="less or equal partial covers its minor"),
        pytest.param("=>1.0 =<1.2.0", "1.2.0", id="reversed operator spellings"),
        pytest.param("!=2.1.0", "2.0.0", id="not equal skips newest"),
        pytest.param(">=1.0, <2.0, !=1.4.2", "1.3.0", id="not equal inside a range"),
        pytest.param("1.2.x", "1.2.5", id="x in patch"),
        pytest.param("1.2.*", "1.2.5", id="star in patch"),
        pytest.param("1.x", "1.4.2", id="x in minor"),
        pytest.param("1.X.x", "1.4.2", id="capital x"),
        pytest.param("1.2", "1.2.5", id="partial version is a wildcard"),
        pytest.param("1", "1.4.2", id="major only is a wildcard"),
        pytest.param("1.2 - 1.3", "1.3.0", id="hyphen range with partial upper bound"),
        pytest.param("1.0.0 - 1.2.4", "1.2.0", id="hyphen range is inclusive and exact"),
        pytest.param("1.0.0 - 1.2.5", "1.2.5", id="hyphen range includes upper bound"),
        pytest.param("0.9 - 1.0, !=1.0.0", "0.9.1", id="hyphen range anded with comma"),
        pytest.param("1.2.x || 0.x", "1.2.5", id="or picks newest across alternatives"),
        pytest.param("^5 || ~1.3", "1.3.0", id="or with one empty alternative"),
        pytest.param(">=1.0 <1.3 || >=2 <2.1", "2.0.0", id="or of two and groups"),
        pytest.param("^4", None, id="no match is none"),
        pytest.param("1.2.4", None, id="missing exact version is none"),
        pytest.param("<0.1", None, id="nothing old enough is none"),
    ],
)
def test_resolve_version(constraint: str | None, expected: str | None) -> None:
    assert resolve_version(constraint, CATALOG) == expected


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        pytest.param("^1.2", "1.4.2", id="prerelease excluded from caret range"),
        pytest.param("~1.3.0", "1.3.0", id="prerelease excluded from tilde range"),
        pytest.param(">=2.0.0 <3", "2.1.0", id="prerelease excluded from comparisons"),
        pytest.param(">=2.1.1", None, id="only prereleases above is none"),
        pytest.param("1.3.0-rc.1", "1.3.0-rc.1", id="exact prerelease is chosen"),
        pytest.param("v3.0.0-alpha.1", "3.0.0-alpha.1", id="exact prerelease with v prefix"),
        pytest.param(">=3.0.0-0", "3.0.0-alpha.1", id="range naming a prerelease admits them"),
        pytest.param(">0.0.0-0", "3.0.0-alpha.1", id="helm devel range admits every prerelease"),
        pytest.param("*-0", "3.0.0-alpha.1", id="star with prerelease admits them"),
        pytest.param(
            ">=2.0.0-0 <3.0.0", "3.0.0-alpha.1", id="one prerelease bound opens the whole and group"
        ),
        pytest.param(">=2.0.0-0 <3.0.0-0", "2.1.0", id="dash zero upper bound keeps next major out"),
        pytest.param(">=1.3.0-0 <1.4", "1.3.0", id="release beats its own prerelease"),
        pytest.param("~1.3.0-0 || ^2", "2.1.0", id="prereleases only in the alternative naming one"),
        pytest.param("^2.0.0-0 <2.1", "2.0.0", id="and group with prerelease picks newest"),
        pytest.param("^2.0.0-0, <2.0.0", "2.0.0-beta.1", id="prerelease chosen when it is the best match"),
    ],
)
def test_prerelease_rules(constraint: str, expected: str | None) -> None:
    assert resolve_version(constraint, CATALOG) == expected


@pytest.mark.parametrize(
    ("constraint", "version", "matches"),
    [
        # Cases from Masterminds/semver's own tests, so `helm install --version` and we agree.
        pytest.param("=2.0", "2.0.1", True, id="equals partial is a wildcard"),
        pytest.param("!=4.1", "4.1.1", False, id="not equal partial excludes its minor"),
        pytest.param("!=4.1", "5.1.0", True, id="not equal partial admits other minors"),
        pytest.param("!=4.1-alpha", "4.1.0", True, id="not equal partial prerelease admits the release"),
        pytest.param("!=4.x", "4.1.0", False, id="not equal major wildcard"),
        pytest.param("<11", "11.1.0", False, id="less than major"),
        pytest.param("<=11", "11.2.3", True, id="less or equal major covers it"),
        pytest.param("<=1.1", "1.2.3", False, id="less or equal minor stops at next minor"),
        pytest.param(">11", "11.1.0", False, id="greater than major needs next major"),
        pytest.param(">11.1", "11.1.1", False, id="greater than minor needs next minor"),
        pytest.param(">11.1", "11.2.1", True, id="greater than minor admits next minor"),
        pytest.param(">=1.1", "4.1.0-beta", False, id="prerelease excluded from open range"),
        pytest.param("<=1.1-a", "0.1.0-alpha", True, id="bound with prerelease admits prereleases"),
        pytest.param(">0.0.0-0", "0.0.0-alpha", True, id="prerelease of zero"),
        pytest.param(">0-0", "0.0.1-alpha", False, id="greater than major zero with prerelease"),
        pytest.param("~1.2.3-beta.2", "1.2.4-beta.2", True, id="tilde prerelease spans patches"),
        pytest.param("~1.2.3-beta.2", "1.3.4-beta.2", False, id="tilde prerelease stops at minor"),
        pytest.param("~1.1.1-beta", "1.1.1-alpha", False, id="tilde below prerelease bound"),
        pytest.param("~0.0.0", "1.2.3", True, id="tilde zero matches anything"),
        pytest.param("^1.2.0-alpha.0", "1.2.1-alpha.1", True, id="caret prerelease spans patches"),
        pytest.param("^1.2.0-alpha.2", "1.2.0-alpha.1", False, id="caret below prerelease bound"),
        pytest.param("^1.1.2-alpha", "1.2.1-beta1", True, id="caret prerelease spans minors"),
        pytest.param("^1.x", "1.1.1-beta1", False, id="caret wildcard excludes prereleases"),
        pytest.param("^0.2.3", "0.5.6", False, id="caret below 1.0 pins minor"),
        pytest.param("^0.0.3", "0.0.4", False, id="caret below 0.1 pins patch"),
        pytest.param("^0.0", "0.0.3", True, id="caret zero zero admits patches"),
        pytest.param("^0.0", "0.1.4", False, id="caret zero zero pins minor"),
        pytest.param("^0", "0.2.3", True, id="caret zero admits minors"),
        pytest.param("^0", "1.1.4", False, id="caret zero stops at 1.0"),
        pytest.param("^0.0.0", "1.2.3", False, id="caret exact zero pins it"),
        pytest.param("0.x.x", "1.2.3", False, id="zero major wildcard"),
        pytest.param("1.2.3+build.1", "1.2.3+build.2", True, id="build metadata is ignored"),
        pytest.param(">1.1, <2", "1.1.1", False, id="and with comma"),
        pytest.param(">=1.1 <2 !=1.2.3 || >= 3", "3.0.0", True, id="second alternative"),
        pytest.param(">=1.1 <2 !=1.2.3 || > 3", "1.2.3", False, id="excluded in every alternative"),
        pytest.param("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", True, id="hyphen range anded"),
        pytest.param("1.1-3", "4.3.2", False, id="hyphen without spaces is a prerelease"),
        pytest.param("*", "not-a-version", False, id="invalid version never matches"),
    ],
)
def test_constraint_matches(constraint: str, version: str, matches: bool) -> None:
    assert parse_constraint(constraint).matches(version) is matches


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        pytest.param("latest", "'latest' is not a version or comparison", id="word"),
        pytest.param(">= foo", "'foo' after '>=' is not a version", id="operator without version"),
        pytest.param(">=", "'>=' must be followed by a version", id="operator alone"),
        pytest.param("1.2.3.4", "'1.2.3.4' is not a version", id="four parts"),
        pytest.param("1.2.3-", "'1.2.3-' is not a version", id="empty prerelease"),
        pytest.param("01.2.3", "not a valid semantic version", id="leading zero"),
        pytest.param("1.2.3-01", "not a valid semantic version", id="leading zero in prerelease"),
        pytest.param("1.x ||", "'||' needs a range on both sides", id="dangling or"),
        pytest.param("|| 1.x", "'||' needs a range on both sides", id="leading or"),
        pytest.param("1.x | 2.x", "alternatives are separated by '||'", id="single pipe"),
        pytest.param("1.2 -1.4", "hyphen range needs spaces", id="hyphen without spaces"),
        pytest.param(">=1.2 - 1.4", "joins two plain versions", id="hyphen range with operator"),
        pytest.param(">1.0,", "ends with a comma", id="trailing comma"),
        pytest.param(">1.0,,<2", "',<2' is not a version", id="double comma"),
        pytest.param("<*", "'<*' is not a useful range", id="less than wildcard"),
        pytest.param("!=*", "'!=*' is not a useful range", id="not equal wildcard"),
        pytest.param("^" + "1" * 600, "longer than 512 characters", id="too long"),
    ],
)
def test_invalid_constraint_is_rejected_with_a_message(constraint: str, message: str) -> None:
    with pytest.raises(InvalidConstraint, match="invalid version constraint") as caught:
        parse_constraint(constraint)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert not is_valid_constraint(constraint)


@pytest.mark.parametrize(
    "constraint",
    [
        pytest.param("", id="empty"),
        pytest.param("1.2.3", id="exact"),
        pytest.param("v1.2.3", id="v prefix"),
        pytest.param("1.3.0-rc.1+build.5", id="prerelease and build"),
        pytest.param("^1.2", id="caret"),
        pytest.param("~1.2.0", id="tilde"),
        pytest.param(">=1 <2", id="space and"),
        pytest.param(">=1.0, <2.0", id="comma and"),
        pytest.param("1.2.x", id="x patch"),
        pytest.param("1.x", id="x minor"),
        pytest.param("*", id="star"),
        pytest.param("1.2 - 1.4", id="hyphen"),
        pytest.param("^1 || ^2", id="or"),
        pytest.param("  >= 1.2.3  ,  < 2  ", id="padded"),
    ],
)
def test_valid_constraint(constraint: str) -> None:
    assert is_valid_constraint(constraint)


def test_resolve_version_rejects_an_invalid_constraint() -> None:
    with pytest.raises(InvalidConstraint, match="'latest'"):
        resolve_version("latest", CATALOG)


def test_constraint_keeps_its_text_and_prints_its_comparators() -> None:
    constraint = parse_constraint(">= 1.0, <2.0 || 3.1 - 3.2 || ~>4")
    assert constraint.text == ">= 1.0, <2.0 || 3.1 - 3.2 || ~>4"
    assert str(constraint) == ">=1.0 <2.0 || >=3.1 <=3.2 || ~4"


@pytest.mark.parametrize(
    ("constraint", "available", "expected"),
    [
        pytest.param("^1", ["1.0.0", "v1.5.0", "1.2.0"], "v1.5.0", id="v prefixed entry returned as listed"),
        pytest.param("1.2", ["1.2", "1.2.4"], "1.2", id="entry spelled like the constraint wins"),
        pytest.param("1.2.3", ["v1.2.3", "1.2.3"], "1.2.3", id="exact spelling beats v prefix"),
        pytest.param("1.2.3", ["v1.2.3", "1.2.3+b"], "v1.2.3", id="equal versions first listed wins"),
        pytest.param("1.2.3+b", ["1.2.3+a", "1.2.3+b"], "1.2.3+b", id="exact build metadata wins"),
        pytest.param("^1", ["1", "1.1"], "1.1", id="partial entries read as versions"),
        pytest.param("*", ["junk", "1.x", "01.0.0", "1.0.0.0", " 1.0.0"], None, id="only junk is none"),
        pytest.param("*", [], None, id="empty catalog is none"),
        pytest.param("*", iter(["1.0.0", "2.0.0"]), "2.0.0", id="any iterable"),
        pytest.param("*", ["1.0.0", 2.0, None, "1.1.0"], "1.1.0", id="non strings ignored"),
    ],
)
def test_resolve_version_catalog_quirks(constraint: str, available: list[str], expected: str | None) -> None:
    assert resolve_version(constraint, available) == expected


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        pytest.param(
            ["1.0.0", "10.0.0", "2.0.0", "1.10.0", "1.9.0"],
            ["10.0.0", "2.0.0", "1.10.0", "1.9.0", "1.0.0"],
            id="numeric not lexical order",
        ),
        pytest.param(
            [
                "1.0.0-alpha.1",
                "1.0.0",
                "1.0.0-beta.11",
                "1.0.0-alpha",
                "1.0.0-rc.1",
                "1.0.0-beta.2",
                "1.0.0-alpha.beta",
                "1.0.0-beta",
            ],
            [
                "1.0.0",
                "1.0.0-rc.1",
                "1.0.0-beta.11",
                "1.0.0-beta.2",
                "1.0.0-beta",
                "1.0.0-alpha.beta",
                "1.0.0-alpha.1",
                "1.0.0-alpha",
            ],
            id="semver prerelease precedence",
        ),
        pytest.param(
            ["1.0.0", "nope", "v2.0.0", "", "1.2.3.4", "0.1"],
            ["v2.0.0", "1.0.0", "0.1"],
            id="invalid dropped and v prefix kept",
        ),
        pytest.param(["1.0.0+b", "1.0.0", "1.0.0+a"], ["1.0.0+b", "1.0.0", "1.0.0+a"], id="ties keep order"),
        pytest.param([], [], id="empty"),
    ],
)
def test_sort_versions_desc(versions: list[str], expected: list[str]) -> None:
    assert sort_versions_desc(versions) == expected
