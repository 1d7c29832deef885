"""Every bad-input class of an environment file gets one clear message naming file, key and fix."""

from pathlib import Path

import pytest

from blueprints.config import WebAppConfig
from cfnbuild.errors import ConfigError
from cfnbuild.project.config import load_config

GOOD = """\
project = "webapp"
regions = ["eu-west-1"]

[load_balancer]
allow_plain_http = true

[network]
cidr = "10.10.0.0/16"
az_count = 2
"""


def _load(tmp_path: Path, text: str, name: str = "dev.toml") -> WebAppConfig:
    path = tmp_path / name
    path.write_text(text)
    return load_config(path, WebAppConfig)


def _error(tmp_path: Path, text: str, name: str = "dev.toml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text, name)
    return info.value


def test_good_file_loads_with_environment_from_file_name(tmp_path):
    config = _load(tmp_path, GOOD)
    assert config.environment == "dev"
    assert config.region == "eu-west-1"
    assert config.network.nat_mode == "single"


@pytest.mark.parametrize(
    ("case", "text", "key", "message"),
    [
        (
            "unknown key, with a suggestion",
            GOOD.replace("az_count", "az_cuont"),
            "network.az_cuont",
            "unknown key; did you mean 'az_count'?",
        ),
        (
            "unknown section",
            GOOD + "\n[netwrok]\ncidr = '10.0.0.0/16'\n",
            "netwrok",
            "unknown key; did you mean 'network'?",
        ),
        (
            "wrong type",
            GOOD.replace("az_count = 2", 'az_count = "2"'),
            "network.az_count",
            "expected an integer, got the string '2'; write 2 without quotes",
        ),
        (
            "malformed CIDR",
            GOOD.replace("10.10.0.0/16", "10.10.0.0/33"),
            "network.cidr",
            "'10.10.0.0/33' is not a valid IPv4 CIDR block",
        ),
        (
            "CIDR with host bits",
            GOOD.replace("10.10.0.0/16", "10.10.0.1/16"),
            "network.cidr",
            "has host bits set",
        ),
        (
            "VPC block too small",
            GOOD.replace("10.10.0.0/16", "10.10.0.0/26"),
            "network.cidr",
            "VPC block 10.10.0.0/26 is /26; use a block from /16 to /24",
        ),
        (
            "overlapping subnets",
            GOOD + 'app_subnets = ["10.10.0.0/24", "10.10.1.0/24"]\n',
            "network.app_subnets",
            "app subnet 10.10.0.0/24 overlaps public subnet 10.10.0.0/20; choose blocks that do not overlap",
        ),
        (
            "subnet outside the VPC",
            GOOD + 'data_subnets = ["10.99.0.0/24", "10.99.1.0/24"]\n',
            "network.data_subnets",
            "data subnet 10.99.0.0/24 is outside the VPC block 10.10.0.0/16",
        ),
        (
            "wrong number of subnets",
            GOOD + 'public_subnets = ["10.10.200.0/24"]\n',
            "network.public_subnets",
            "public subnets list 1 block(s) for 2 zone(s)",
        ),
        (
            "more AZs than the region has",
            GOOD.replace('"eu-west-1"', '"us-west-1"').replace("az_count = 2", "az_count = 3"),
            "network.az_count",
            "network.az_count is 3 but us-west-1 offers 2 Availability Zones; set network.az_count to 2 or less",
        ),
        (
            "AZ count out of range",
            GOOD.replace("az_count = 2", "az_count = 1"),
            "network.az_count",
            "az_count is 1; span 2 or 3 Availability Zones",
        ),
        (
            "unknown region",
            GOOD.replace("eu-west-1", "eu-wset-1"),
            "regions[0]",
            "'eu-wset-1' is not an AWS region; did you mean 'eu-west-1'?",
        ),
        (
            "no region",
            GOOD.replace('["eu-west-1"]', "[]"),
            "regions",
            "is empty; give at least 1 item",
        ),
        (
            "bad NAT mode",
            GOOD + 'nat_mode = "many"\n',
            "network.nat_mode",
            "is 'many'; use 'single' or 'per-az'",
        ),
        (
            "bad retention",
            GOOD + "flow_log_retention_days = 10\n",
            "network.flow_log_retention_days",
            "which CloudWatch Logs does not offer; use one of 1, 3, 5",
        ),
        (
            "missing key",
            GOOD.replace('project = "webapp"\n', ""),
            "project",
            "required key is missing; add it (Short project name, used in tags)",
        ),
        (
            "environment key set by hand",
            "environment = 'prod'\n" + GOOD,
            "environment",
            "is set by the file name",
        ),
        (
            "min greater than max",
            GOOD + "[compute]\nmin_size = 5\nmax_size = 2\n",
            "compute.min_size",
            "min_size 5 is greater than max_size 2; make min_size at most max_size",
        ),
        (
            "desired outside min..max",
            GOOD + "[compute]\nmin_size = 1\nmax_size = 2\ndesired_capacity = 3\n",
            "compute.desired_capacity",
            "desired_capacity 3 is outside min_size..max_size (1..2)",
        ),
        (
            "grace period as long as the bootstrap the launch hook already waits for",
            GOOD + "[compute]\nhealth_check_grace_seconds = 3600\n",
            "compute.health_check_grace_seconds",
            "health_check_grace_seconds 3600 is not below the launch hook's",
        ),
        (
            "negative grace period",
            GOOD + "[compute]\nhealth_check_grace_seconds = -1\n",
            "compute.health_check_grace_seconds",
            "is -1; use 0 to 3600",
        ),
        (
            "malformed e-mail",
            GOOD + '[alerts]\nemail = "ops@@example"\n',
            "alerts.email",
            "'ops@@example' is not an e-mail address; write it like 'ops@example.com'",
        ),
        (
            "malformed domain",
            GOOD + '[dns]\ndomain = "https://app.example.com"\nhosted_zone_id = "Z123ABC"\n',
            "dns.domain",
            "'https://app.example.com' is not a valid domain name",
        ),
        (
            "domain without a hosted zone",
            GOOD + '[dns]\ndomain = "app.example.com"\n',
            "dns.hosted_zone_id",
            "a domain needs a hosted zone",
        ),
        (
            "malformed hosted zone id",
            GOOD + '[dns]\ndomain = "app.example.com"\nhosted_zone_id = "zone-1"\n',
            "dns.hosted_zone_id",
            "is 'zone-1', which does not match the pattern ^Z[A-Z0-9]{1,31}$; write it like 'Z0123456789ABCDEFGHIJ'",
        ),
        (
            "unknown monitoring interval",
            GOOD + "[database]\nmonitoring_interval_seconds = 45\n",
            "database.monitoring_interval_seconds",
            "is 45; use 1, 5, 10, 15, 30 or 60",
        ),
        (
            "number above the upper bound, both bounds named",
            GOOD + "[compute]\nmax_size = 100000\n",
            "compute.max_size",
            "is 100000; use 1 to 100",
        ),
        (
            "number below the lower bound",
            GOOD + "[compute]\nmin_size = -1\n",
            "compute.min_size",
            "is -1; use 0 to 100",
        ),
        (
            "boolean where an integer belongs",
            GOOD + "[compute]\nmax_size = true\n",
            "compute.max_size",
            "expected an integer, got the boolean true; write a whole number (1 to 100)",
        ),
        (
            "number with a decimal point",
            GOOD + "[compute]\nmax_size = 3.0\n",
            "compute.max_size",
            "expected an integer, got the number 3.0; write 3, without a decimal point",
        ),
        (
            "quoted boolean",
            GOOD + '[database]\ndeletion_protection = "yes"\n',
            "database.deletion_protection",
            "expected true or false, got the string 'yes'; write true or false, without quotes",
        ),
        (
            "quoted choice of numbers",
            GOOD + '[database]\nmonitoring_interval_seconds = "60"\n',
            "database.monitoring_interval_seconds",
            "is '60'; use 1, 5, 10, 15, 30 or 60, without quotes",
        ),
        (
            "a string where an array belongs",
            GOOD.replace('["eu-west-1"]', '"eu-west-1"'),
            "regions",
            """expected an array, got the string 'eu-west-1'; write it in brackets: ["eu-west-1"]""",
        ),
        (
            "a value where a section belongs",
            "compute = 5\n" + GOOD,
            "compute",
            "expected a table, got the integer 5; write it as a [compute] table",
        ),
        (
            "malformed instance type",
            GOOD + '[compute]\ninstance_type = "large"\n',
            "compute.instance_type",
            "is 'large', which does not match the pattern ^[a-z][a-z0-9-]*\\.[a-z0-9]+$; write it like 't3.small'",
        ),
        (
            "bad tag value type",
            GOOD + "[tags]\nOwner = 5\n",
            "tags.Owner",
            'expected a string, got the integer 5; write it in quotes: "5"',
        ),
    ],
)
def test_bad_config_names_file_key_and_fix(tmp_path, case, text, key, message):
    error = _error(tmp_path, text)
    line = str(error).splitlines()[0]
    assert line.startswith(f"{tmp_path / 'dev.toml'}: {key}: "), f"{case}: {line}"
    assert message in line, f"{case}: {line}"
    assert error.exit_code == 2


def test_no_message_is_left_in_pydantic_words(tmp_path):
    text = (
        GOOD.replace("az_count = 2", "az_count = true")
        + 'nat_mode = 3\n[compute]\nmax_size = 0\ncpu_target_percent = 95\n[database]\nreader_count = "1"\n'
        + "[budget]\nmonthly_limit_usd = 0\n[deploy]\ncapabilities = ['CAPABILITY_ALL']\n"
    )
    lines = str(_error(tmp_path, text)).splitlines()
    assert len(lines) == 7
    for line in lines:
        assert "Input should" not in line, line
        assert "as the message says" not in line, line


def test_invalid_toml_names_the_file_and_line(tmp_path):
    error = _error(tmp_path, GOOD + "cidr = \n")
    assert "is not valid TOML" in str(error)
    assert f"line {GOOD.count(chr(10)) + 1}" in str(error)  # the line after GOOD's last


def test_invalid_environment_file_name(tmp_path):
    error = _error(tmp_path, GOOD, name="Prod Env.toml")
    assert "'Prod Env' is not a valid environment name" in str(error)


def test_every_problem_in_a_file_is_reported_one_per_line(tmp_path):
    error = _error(tmp_path, GOOD.replace("az_count = 2", 'az_count = "2"') + "bogus = 1\n")
    assert len(str(error).splitlines()) == 2


@pytest.mark.parametrize("case", ["malformed e-mail", "malformed domain"])
def test_email_and_domain_types_reject_malformed_values(case):
    from pydantic import TypeAdapter, ValidationError

    from cfnbuild.project.config import DomainName, Email

    adapter, value = (
        (TypeAdapter(Email), "ops@@example")
        if case == "malformed e-mail"
        else (TypeAdapter(DomainName), "https://app.example.com")
    )
    with pytest.raises(ValidationError, match=r"not an e-mail address|not a valid domain name"):
        adapter.validate_python(value)


def test_committed_configs_are_valid():
    root = Path(__file__).resolve().parents[2] / "config"
    names = sorted(p.stem for p in root.glob("*.toml"))
    assert names == ["dev", "prod", "staging"]
    for name in names:
        load_config(root / f"{name}.toml", WebAppConfig)


def test_out_of_range_value_is_one_line_through_the_cli_with_both_bounds_and_exit_code_2(project_dir, capsys):
    from cfnbuild.cli.main import main

    config = project_dir / "config/dev.toml"
    config.write_text(config.read_text().replace("max_size = 2", "max_size = 100000"))
    with pytest.raises(SystemExit) as exited:
        main(["--project", str(project_dir), "build", "--env", "dev"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == f"error: {config}: compute.max_size: is 100000; use 1 to 100\n"


PLAIN = "load_balancer.allow_plain_http"


def test_serving_plain_http_without_a_domain_must_be_said(tmp_path):
    error = _error(tmp_path, GOOD.replace("allow_plain_http = true\n", ""))
    assert str(error) == (
        f"{tmp_path / 'dev.toml'}: {PLAIN}: without [dns] domain the load balancer has no certificate and serves the "
        "app over plain HTTP; give [dns] domain and hosted_zone_id for HTTPS, or set "
        "load_balancer.allow_plain_http = true to accept plain HTTP (not in prod)"
    )
    assert error.exit_code == 2


def test_prod_may_not_serve_plain_http(tmp_path):
    error = _error(tmp_path, GOOD, name="prod.toml")
    assert str(error) == (
        f"{tmp_path / 'prod.toml'}: {PLAIN}: a production environment (prod, or termination protection on) may not "
        "serve plain HTTP; give [dns] domain and hosted_zone_id so the app is served over HTTPS"
    )


def test_termination_protection_marks_an_environment_as_production(tmp_path):
    error = _error(tmp_path, GOOD + "\n[deploy]\ntermination_protection = true\n", name="live.toml")
    assert f"{PLAIN}: a production environment (prod, or termination protection on) may not serve plain HTTP" in str(
        error
    )


def test_allow_plain_http_with_a_domain_is_refused_as_doing_nothing(tmp_path):
    text = GOOD + '\n[dns]\ndomain = "app.example.org"\nhosted_zone_id = "Z123ABC"\n'
    assert str(_error(tmp_path, text)).endswith(
        f"{PLAIN}: allow_plain_http does nothing with a domain: port 80 only redirects to HTTPS; remove it"
    )


def test_a_domain_without_allow_plain_http_loads_for_prod(tmp_path):
    text = (
        GOOD.replace("allow_plain_http = true\n", "")
        + '\n[dns]\ndomain = "app.example.org"\nhosted_zone_id = "Z123ABC"\n'
    )
    assert _load(tmp_path, text, name="prod.toml").load_balancer.allow_plain_http is False
