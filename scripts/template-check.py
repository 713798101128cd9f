"""Checks what template.yaml must wire for the gateway, on the template as SAM transforms it
(the same translator `sam deploy` uses; no AWS call): the two functions built from the one
binary, the callback routes and their throttling, the reply-job stream mapping and its filter,
each function's permissions, the settings the binary reads; the fixed egress (a VPC or an
API proxy), the custom domain and the config and secrets read from SSM / Secrets Manager, each
off unless its parameters are given; and the alarms, dashboard and log retention of
docs/metrics.md.

Run by scripts/sam-check.sh with the SAM CLI's venv python:
    python scripts/template-check.py [template.yaml]
"""
import copy
import json
import os
import re
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
failures = []

CALLBACK = "Function"  # the callback gateway, behind the HTTP API
WORKER = "ReplyJobsFunction"  # the reply-job worker, run by the table's stream
ITEM_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
STREAM_READ_ACTIONS = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"}
STREAM_ACTIONS = STREAM_READ_ACTIONS | {"dynamodb:ListStreams"}
# The gateway's routes (src/gateway/route.rs), one API Gateway route per method.
ROUTES = {
    ("GET", "/wecom/{app}"), ("POST", "/wecom/{app}"),
    ("GET", "/mp/{app}"), ("POST", "/mp/{app}"),
    ("GET", "/aibot/{app}"), ("POST", "/aibot/{app}"),
    ("POST", "/open/{app}"),
    ("GET", "/open/{app}/{authorizer_appid}"), ("POST", "/open/{app}/{authorizer_appid}"),
}
TABLE_ARN = {"Fn::GetAtt": ["Table", "Arn"]}
STREAM_ARN = {"Fn::GetAtt": ["Table", "StreamArn"]}
FAILED_JOBS_ARN = {"Fn::GetAtt": ["FailedJobs", "Arn"]}
# ListStreams as narrowly as a policy can say it: this table's streams.
TABLE_STREAMS = {"Fn::Sub": "${Table.Arn}/stream/*"}


def check(ok, what):
    if not ok:
        failures.append(what)


def as_list(value):
    return value if isinstance(value, list) else [value]


template = yaml_parse(open(sys.argv[1] if len(sys.argv) > 1 else "template.yaml").read())
raw = copy.deepcopy(template)  # the transform changes `template` in place
params = raw.get("Parameters", {})
conditions = raw.get("Conditions", {})

# --- before the transform: what `sam build` sees ------------------------------------------
# `sam build` builds functions with the same CodeUri, Runtime, Handler, Architectures and
# Metadata once (one build definition) and copies the artifact to each.
functions = {k: r for k, r in template["Resources"].items() if r.get("Type") == "AWS::Serverless::Function"}
check(set(functions) == {CALLBACK, WORKER}, f"two functions, {CALLBACK} and {WORKER} (got {sorted(functions)})")
globals_fn = template.get("Globals", {}).get("Function", {})


def effective(name, prop):
    return functions.get(name, {}).get("Properties", {}).get(prop, globals_fn.get(prop))


for name in functions:
    meta = functions[name].get("Metadata", {})
    check(meta.get("BuildMethod") == "rust-cargolambda" and meta.get("BuildProperties", {}).get("Binary") == "wxgate",
          f"{name} is built by cargo-lambda from the binary wxgate")
if {CALLBACK, WORKER} <= set(functions):
    for prop in ["CodeUri", "Runtime", "Handler", "Architectures"]:
        check(effective(CALLBACK, prop) is not None and effective(CALLBACK, prop) == effective(WORKER, prop),
              f"both functions have the same {prop} (one build)")
    check(functions[CALLBACK].get("Metadata") == functions[WORKER].get("Metadata"),
          "both functions have the same build Metadata (one build)")

log_level = params.get("LogLevel", {})
check(log_level.get("AllowedValues") == ["error", "warn", "info", "debug", "trace"] and log_level.get("Default") == "info",
      "LogLevel allows exactly error, warn, info, debug, trace, default info")

# --- the transform --------------------------------------------------------------------------
# The translator alone: AWS::LanguageExtensions (used only for the Outputs' ForEach) is
# CloudFormation's, and a local CodeUri is replaced by `sam package`.
template["Transform"] = "AWS::Serverless-2016-10-31"
template["Outputs"] = {k: v for k, v in template.get("Outputs", {}).items() if not k.startswith("Fn::")}
if "CodeUri" in globals_fn:
    globals_fn["CodeUri"] = "s3://bucket/key"
for r in functions.values():
    if "CodeUri" in r.get("Properties", {}):
        r["Properties"]["CodeUri"] = "s3://bucket/key"


class Policies:
    def load(self):
        return {
            name: f"arn:aws:iam::aws:policy/service-role/{name}"
            for name in ["AWSLambdaBasicExecutionRole", "AWSLambdaDynamoDBExecutionRole"]
        }


out = transform(template, {}, Policies())["Resources"]


def fn_props(name):
    return out.get(name, {}).get("Properties", {})


table = out["Table"]["Properties"]
check(table.get("StreamSpecification", {}).get("StreamViewType") in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"),
      "the table's stream carries new images (the worker reads the job state)")

# --- settings the binary reads --------------------------------------------------------------
for name in [CALLBACK, WORKER]:
    env = fn_props(name).get("Environment", {}).get("Variables", {})
    check(env.get("WXGATE_REPLY_JOBS") == "stream", f"WXGATE_REPLY_JOBS=stream on {name}")
    check(env.get("WXGATE_TABLE") == {"Ref": "Table"}, f"WXGATE_TABLE (the table's name) on {name}")
    check(fn_props(name).get("LoggingConfig", {}).get("LogGroup") == {"Ref": "LogGroup"},
          f"{name} logs to the stack's LogGroup")
check(fn_props(CALLBACK).get("Environment") == fn_props(WORKER).get("Environment"),
      "both functions get the same environment")
check(fn_props(WORKER).get("Timeout", 3) >= 60 + 30 + 5,
      f"{WORKER} Timeout covers a job: deferred_limit_ms (60 s default) + 30 s to send")
check(fn_props(WORKER).get("Timeout", 3) >= 360 + 240 + 5,
      f"{WORKER} Timeout covers an AI bot stream: the 6-minute window + 4 minutes for response_url")
check(fn_props(CALLBACK).get("Timeout", 3) <= 30,
      f"{CALLBACK} Timeout stays short (callbacks are answered within the 4 s budget)")


NO_VALUE = "<NoValue>"


def value_of(node, given=None):
    """A property's value with the parameters `given` (name -> the string passed, as in
    --parameter-overrides) and the others at their defaults: Ref, Fn::If, Fn::Not,
    Fn::Equals, Fn::Join and Condition evaluated, a CommaDelimitedList as its list,
    AWS::NoValue as "<NoValue>" (dropped from lists and maps), anything else as written."""
    given = given or {}
    if isinstance(node, dict) and len(node) == 1:
        (fn, arg), = node.items()
        if fn == "Ref":
            if arg == "AWS::NoValue":
                return NO_VALUE
            if arg not in params:
                return node  # a resource or a pseudo parameter
            param = params[arg]
            value = str(given.get(arg, param.get("Default")))
            return value.split(",") if param.get("Type") == "CommaDelimitedList" else value
        if fn == "Fn::If":
            return value_of(arg[1] if value_of(conditions[arg[0]], given) else arg[2], given)
        if fn == "Fn::Not":
            return not value_of(arg[0], given)
        if fn == "Fn::And":
            return all(value_of(a, given) for a in arg)
        if fn == "Fn::Equals":
            return str(value_of(arg[0], given)) == str(value_of(arg[1], given))
        if fn == "Fn::Join":
            return arg[0].join(value_of(arg[1], given))
        if fn == "Fn::Split":
            return value_of(arg[1], given).split(arg[0])
        if fn == "Fn::Or":
            return any(value_of(a, given) for a in arg)
        if fn == "Fn::Sub":
            text, names = (arg, {}) if isinstance(arg, str) else arg
            names = {k: value_of(v, given) for k, v in names.items()}
            if not any(n in names or n in params for n in re.findall(r"\$\{([^}]+)\}", text)):
                return node  # pseudo parameters and attributes only: kept as written

            def substitute(m):
                name = m.group(1)
                if name in names:
                    return names[name]
                if name in params:
                    return value_of({"Ref": name}, given)
                return m.group(0)  # a pseudo parameter (AWS::Region) or an attribute, as written
            return re.sub(r"\$\{([^}]+)\}", substitute, text)
        if fn == "Condition":
            return value_of(conditions[arg], given)
    if isinstance(node, dict):
        return {k: v for k, v in ((k, value_of(v, given)) for k, v in node.items()) if v != NO_VALUE}
    if isinstance(node, list):
        return [v for v in (value_of(v, given) for v in node) if v != NO_VALUE]
    return node


def default_of(node):
    """A property's value when every parameter has its default."""
    return value_of(node)


# Reserved concurrency: with the parameters' defaults, neither function reserves any (a
# reservation of 0 would throttle it; new accounts can reserve nothing).
for name in [CALLBACK, WORKER]:
    reserved = fn_props(name).get("ReservedConcurrentExecutions")
    check(reserved is None or default_of(reserved) == NO_VALUE,
          f"{name} reserves no concurrency with the parameters' defaults")

# --- routes and throttling ------------------------------------------------------------------
apis = {k: r for k, r in out.items() if r["Type"] == "AWS::ApiGatewayV2::Api"}
check(list(apis) == ["HttpApi"], "one HTTP API, HttpApi")
paths = apis.get("HttpApi", {}).get("Properties", {}).get("Body", {}).get("paths", {})
routes = {(m.upper(), p) for p, ops in paths.items() for m in ops}
check(routes == ROUTES, f"exactly the gateway's routes {sorted(ROUTES)} (got {sorted(routes)})")
check(not any("proxy+" in p or p == "$default" for p in paths), "no catch-all route")
integrations = [op.get("x-amazon-apigateway-integration", {}) for ops in paths.values() for op in ops.values()]
check(all(f"${{{CALLBACK}.Arn}}" in json.dumps(i.get("uri")) for i in integrations),
      f"every route invokes {CALLBACK}")
check(all(i.get("payloadFormatVersion") == "2.0" for i in integrations), "payload format 2.0 on every route")
stages = [r["Properties"] for r in out.values()
          if r["Type"] == "AWS::ApiGatewayV2::Stage" and r["Properties"].get("ApiId") == {"Ref": "HttpApi"}]
settings = stages[0].get("DefaultRouteSettings", {}) if len(stages) == 1 else {}
for key in ["ThrottlingRateLimit", "ThrottlingBurstLimit"]:
    value = default_of(settings.get(key))
    check(value not in (None, "None") and float(value) >= 1,
          f"{key} set on the HttpApi stage's default route settings (default at least 1)")

# --- the reply-job stream mapping -----------------------------------------------------------
mappings = {k: r for k, r in out.items() if r["Type"] == "AWS::Lambda::EventSourceMapping"}
check(len(mappings) == 1, "one event source mapping (the reply-job stream)")
roles = {name: fn_props(name).get("Role", {}).get("Fn::GetAtt", [None])[0] for name in [CALLBACK, WORKER]}
for name, m in mappings.items():
    p = m["Properties"]
    check(p.get("EventSourceArn") == STREAM_ARN, "the mapping reads the table's stream")
    check(p.get("FunctionName") == {"Ref": WORKER}, f"the mapping invokes {WORKER} (not {CALLBACK})")
    patterns = [json.loads(f["Pattern"]) for f in p.get("FilterCriteria", {}).get("Filters", [])]
    check(len(patterns) == 1 and all(pt.get("dynamodb", {}).get("NewImage", {}).get("job", {}).get("S") == ["pending"]
                                     for pt in patterns),
          "the filter passes only records with job = pending (what the claim writes)")
    check("ReportBatchItemFailures" in p.get("FunctionResponseTypes", []),
          "partial batch responses (the worker answers batchItemFailures)")
    check(0 <= p.get("MaximumRetryAttempts", -1) <= 10, "a bounded number of retries")
    check(p.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination") == FAILED_JOBS_ARN,
          "failed batches go to the FailedJobs queue")
    check(roles[WORKER] is not None and roles[WORKER] in as_list(m.get("DependsOn", [])),
          f"the mapping waits for {WORKER}'s role and its policy (DependsOn)")

# --- permissions ----------------------------------------------------------------------------
for role_id, role in ((k, r) for k, r in out.items() if r["Type"] == "AWS::IAM::Role"):
    check(not any("AWSLambdaDynamoDBExecutionRole" in json.dumps(a) for a in role["Properties"].get("ManagedPolicyArns", [])),
          f"{role_id} carries no AWSLambdaDynamoDBExecutionRole (stream actions on every stream)")


def grants(role_id, given=None):
    """(action, resource) pairs of a role's inline statements, and its managed policies, with
    the parameters `given` (see value_of)."""
    role = value_of(out.get(role_id, {}).get("Properties", {}), given)
    pairs = set()
    for policy in role.get("Policies", []):
        for s in policy["PolicyDocument"]["Statement"]:
            check(s.get("Effect") == "Allow" and "Condition" not in s and "NotAction" not in s,
                  f"{role_id}: plain Allow statements only")
            for a in as_list(s.get("Action", [])):
                for r in as_list(s.get("Resource", [])):
                    pairs.add((a, json.dumps(r, sort_keys=True)))
    return pairs, [json.dumps(a) for a in role.get("ManagedPolicyArns", [])]


def on(resource):
    return json.dumps(resource, sort_keys=True)


expected = {
    CALLBACK: {(a, on(TABLE_ARN)) for a in ITEM_ACTIONS},
    WORKER: {(a, on(TABLE_ARN)) for a in ITEM_ACTIONS}
    | {(a, on(STREAM_ARN)) for a in STREAM_READ_ACTIONS}
    | {("dynamodb:ListStreams", on(TABLE_STREAMS)), ("sqs:SendMessage", on(FAILED_JOBS_ARN))},
}
check(roles[CALLBACK] != roles[WORKER], "each function has a role of its own")
for name in [CALLBACK, WORKER]:
    check(roles[name] in out, f"{name} has its own role")
    assume = out.get(roles[name], {}).get("Properties", {}).get("AssumeRolePolicyDocument", {})
    check([(s.get("Effect"), s.get("Principal"), as_list(s.get("Action")), s.get("Condition"))
           for s in assume.get("Statement", [])]
          == [("Allow", {"Service": "lambda.amazonaws.com"}, ["sts:AssumeRole"], None)],
          f"{name}: only Lambda may assume its role")
    pairs, managed = grants(roles[name])
    check(len(managed) == 1 and "AWSLambdaBasicExecutionRole" in managed[0],
          f"{name}: the only managed policy is AWSLambdaBasicExecutionRole (logs) with the "
          f"parameters' defaults (got {managed})")
    items = {a for a, r in pairs if r == on(TABLE_ARN)}
    check(items == ITEM_ACTIONS, f"{name}: exactly GetItem, PutItem, UpdateItem on the table (got {sorted(items)})")
    check(not any(r == on("*") and (a.startswith("dynamodb:") or a.startswith("sqs:")) for a, r in pairs),
          f"{name}: no DynamoDB or SQS action on \"*\"")
    check(pairs == expected[name], f"{name}: exactly the permissions it needs "
          f"(extra {sorted(pairs - expected[name])}, missing {sorted(expected[name] - pairs)})")
    if name == CALLBACK:
        check(not any(a in STREAM_ACTIONS or a.startswith("sqs:") for a, _ in pairs),
              f"{CALLBACK}: no stream or SQS permissions")
    else:
        stream = {a for a, r in pairs if a in STREAM_READ_ACTIONS}
        check(stream == STREAM_READ_ACTIONS and all(r == on(STREAM_ARN) for a, r in pairs if a in STREAM_READ_ACTIONS),
              f"{WORKER}: the stream actions only on the table's stream ARN")
        check(all(r == on(TABLE_STREAMS) for a, r in pairs if a == "dynamodb:ListStreams"),
              f"{WORKER}: ListStreams only on the table's streams")
        check(("sqs:SendMessage", on(FAILED_JOBS_ARN)) in pairs
              and all(r == on(FAILED_JOBS_ARN) for a, r in pairs if a.startswith("sqs:")),
              f"{WORKER}: sqs:SendMessage only on the FailedJobs queue")

# --- fixed egress (docs/fixed-egress.md) ---------------------------------------------------
# Off by default: no VpcConfig, no ENI permissions, an empty WXGATE_API_PROXY. With subnets
# and security groups given, both functions (both call the platform APIs) run in them and
# both roles get AWSLambdaVPCAccessExecutionRole; nothing else changes.
for key, kind in [("EgressSubnetIds", "CommaDelimitedList"), ("EgressSecurityGroupIds", "CommaDelimitedList"),
                  ("ApiProxy", "String")]:
    check(params.get(key, {}).get("Type") == kind and params.get(key, {}).get("Default") == "",
          f"parameter {key}, a {kind} defaulting to empty (fixed egress off)")
check(params.get("ApiProxy", {}).get("NoEcho") is True, "ApiProxy is NoEcho (a proxy URL may hold a password)")
VPC = {"EgressSubnetIds": "subnet-a,subnet-b", "EgressSecurityGroupIds": "sg-1"}
for name in [CALLBACK, WORKER]:
    env = fn_props(name).get("Environment", {}).get("Variables", {})
    check(env.get("WXGATE_API_PROXY") == {"Ref": "ApiProxy"}, f"WXGATE_API_PROXY (ApiProxy) on {name}")
    vpc = fn_props(name).get("VpcConfig")
    check(vpc is None or default_of(vpc) == NO_VALUE, f"{name} is in no VPC with the parameters' defaults")
    check(value_of(vpc, VPC) == {"SubnetIds": ["subnet-a", "subnet-b"], "SecurityGroupIds": ["sg-1"]},
          f"{name} runs in EgressSubnetIds with EgressSecurityGroupIds when they are given")
    check(value_of(vpc, {"EgressSecurityGroupIds": "sg-1"}) == NO_VALUE,
          f"{name}: security groups alone do not put it in a VPC")
    pairs, managed = grants(roles[name], VPC)
    check(len(managed) == 2 and "AWSLambdaBasicExecutionRole" in managed[0]
          and "AWSLambdaVPCAccessExecutionRole" in managed[1],
          f"{name}: AWSLambdaVPCAccessExecutionRole is added in VPC mode (got {managed})")
    check(pairs == expected[name], f"{name}: VPC mode adds no inline permission")
rules = raw.get("Rules", {})
check(any({"EgressSubnetIds", "EgressSecurityGroupIds"} <= set(json.dumps(r.get("Assertions", [])).split('"'))
          for r in rules.values()),
      "a rule refuses EgressSubnetIds without EgressSecurityGroupIds and the other way round")

# --- custom domain (README "Custom domain") ------------------------------------------------
# Off by default. With DomainName and DomainCertificateArn: a regional API Gateway domain
# with that certificate, the whole API mapped at its root ($default stage), and every
# callback URL output on it; with DomainHostedZoneId too, a Route 53 alias record.
DOMAIN = {"DomainName": "wx.example.com",
          "DomainCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"}
for key in ["DomainName", "DomainCertificateArn", "DomainHostedZoneId"]:
    check(params.get(key, {}).get("Type") == "String" and params.get(key, {}).get("Default") == "",
          f"parameter {key}, a String defaulting to empty (no custom domain)")
domain_res = {k: out.get(k, {}) for k in ["ApiDomain", "ApiDomainMapping", "ApiDomainRecord"]}
check(domain_res["ApiDomain"].get("Type") == "AWS::ApiGatewayV2::DomainName"
      and domain_res["ApiDomain"].get("Condition") == "HasDomain", "ApiDomain exists only with DomainName")
check(not value_of(conditions["HasDomain"]) and value_of(conditions["HasDomain"], DOMAIN),
      "HasDomain is off by default and on with DomainName")
dn = value_of(domain_res["ApiDomain"].get("Properties", {}), DOMAIN)
check(dn.get("DomainName") == "wx.example.com"
      and dn.get("DomainNameConfigurations") == [{"CertificateArn": DOMAIN["DomainCertificateArn"],
                                                  "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2"}],
      f"ApiDomain: DomainName with its certificate, regional, TLS 1.2 (got {dn})")
mapping = domain_res["ApiDomainMapping"]
stage = mapping.get("Properties", {}).get("Stage")
check(mapping.get("Condition") == "HasDomain" and mapping["Properties"].get("ApiId") == {"Ref": "HttpApi"}
      and isinstance(stage, dict) and out.get(stage.get("Ref"), {}).get("Type") == "AWS::ApiGatewayV2::Stage"
      and out[stage["Ref"]]["Properties"].get("StageName") == "$default"
      and "ApiMappingKey" not in mapping["Properties"],
      f"ApiDomainMapping maps the HTTP API's $default stage at the domain's root (got {mapping})")
record = domain_res["ApiDomainRecord"]
check(record.get("Condition") == "HasDomainRecord"
      and not value_of(conditions["HasDomainRecord"], DOMAIN)
      and value_of(conditions["HasDomainRecord"], {**DOMAIN, "DomainHostedZoneId": "Z0123456789"})
      and record["Properties"].get("AliasTarget", {}).get("DNSName") == {"Fn::GetAtt": ["ApiDomain", "RegionalDomainName"]},
      "ApiDomainRecord: an alias to the regional endpoint, only with DomainHostedZoneId")
urls = raw.get("Outputs", {}).get("Fn::ForEach::CallbackUrls", [None, None, {}])[2].get("CallbackUrl&{Path}", {})
check(value_of(urls.get("Value"), DOMAIN) == "https://wx.example.com/${Path}"
      and "execute-api" in json.dumps(default_of(urls.get("Value"))),
      "every CallbackUrl output is on DomainName when it is given, else on execute-api")
check(any({"DomainName", "DomainCertificateArn"} <= set(json.dumps(r.get("Assertions", [])).split('"'))
          for r in rules.values()),
      "a rule refuses DomainName without DomainCertificateArn")
# --- metrics and alarms (docs/metrics.md) ---------------------------------------------------
# Each alarm notifies AlarmTopic; an email subscription exists only when AlarmEmail is given;
# the EMF alarms watch the wxgate namespace's Service totals; both functions log to the one
# LogGroup, as plain lines (EMF needs the line itself as the log event), kept
# LogRetentionDays.
def alarms_on(namespace, metric):
    return {k: r["Properties"] for k, r in out.items()
            if r.get("Type") == "AWS::CloudWatch::Alarm"
            and r["Properties"].get("Namespace") == namespace and r["Properties"].get("MetricName") == metric}


def alarm_dimensions(props):
    return {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}


topic = [k for k, r in out.items() if r.get("Type") == "AWS::SNS::Topic"]
check(topic == ["AlarmTopic"], f"one SNS topic, AlarmTopic (got {topic})")
every_alarm = [r["Properties"] for r in out.values() if r.get("Type") == "AWS::CloudWatch::Alarm"]
check(len(every_alarm) >= 8 and all(a.get("AlarmActions") == [{"Ref": "AlarmTopic"}] for a in every_alarm),
      "every alarm (at least eight) notifies AlarmTopic")
check(all(a.get("TreatMissingData") == "notBreaching" for a in every_alarm),
      "no alarm fires for want of data (a quiet gateway prints no metrics)")
for name in [CALLBACK, WORKER]:
    for metric in ["Errors", "Throttles"]:
        found = [a for a in alarms_on("AWS/Lambda", metric).values()
                 if alarm_dimensions(a) == {"FunctionName": {"Ref": name}}]
        check(len(found) == 1 and found[0].get("Threshold") == 0
              and found[0].get("ComparisonOperator") == "GreaterThanThreshold",
              f"an alarm on {name}'s {metric} > 0")
queue = [a for a in alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible").values()
         if alarm_dimensions(a) == {"QueueName": {"Fn::GetAtt": ["FailedJobs", "QueueName"]}}]
check(len(queue) == 1 and queue[0].get("Threshold") == 0 and queue[0].get("ComparisonOperator") == "GreaterThanThreshold",
      "an alarm when the FailedJobs queue is not empty")
# The EMF metrics the binary prints (src/metrics/mod.rs): namespace wxgate, the totals under
# the dimension Service=wxgate.
for metric, threshold in [("Refusals", {"Ref": "RefusalAlarmThreshold"}), ("DedupFailOpens", 0),
                          ("TokenRefreshFailures", 0)]:
    found = list(alarms_on("wxgate", metric).values())
    check(len(found) == 1 and alarm_dimensions(found[0]) == {"Service": "wxgate"}
          and found[0].get("Statistic") == "Sum" and found[0].get("Threshold") == threshold
          and found[0].get("ComparisonOperator") == "GreaterThanThreshold",
          f"an alarm on the EMF total {metric} (Service=wxgate) over {threshold}")
check(params.get("RefusalAlarmThreshold", {}).get("Type") == "Number", "parameter RefusalAlarmThreshold, a Number")
check(params.get("AlarmEmail", {}).get("Default") == "", "parameter AlarmEmail, empty by default")
subscriptions = {k: r for k, r in raw["Resources"].items() if r.get("Type") == "AWS::SNS::Subscription"}
check(len(subscriptions) == 1 and all(
    r.get("Condition") == "AlarmEmailGiven" and r["Properties"].get("Endpoint") == {"Ref": "AlarmEmail"}
    and r["Properties"].get("Protocol") == "email" for r in subscriptions.values()),
      "an email subscription to AlarmTopic only when AlarmEmail is given")
check(value_of({"Condition": "AlarmEmailGiven"}) is False
      and value_of({"Condition": "AlarmEmailGiven"}, {"AlarmEmail": "ops@example.com"}) is True,
      "AlarmEmailGiven: false by default, true with an address")
dashboards = [r["Properties"] for r in out.values() if r.get("Type") == "AWS::CloudWatch::Dashboard"]
check(len(dashboards) == 1, "one CloudWatch dashboard")
for d in dashboards:
    body = d.get("DashboardBody", {}).get("Fn::Sub", "")
    try:
        widgets = json.loads(body.replace("${", "{")).get("widgets", [])
    except ValueError as e:
        widgets = []
        check(False, f"the dashboard body is JSON ({e})")
    text = json.dumps(widgets)
    check(len(widgets) >= 4 and all(m in text for m in ["Callbacks", "Refusals", "BotLatency", "StoreLatency",
                                                          "DedupFailOpens", "TokenRefreshFailures"]),
          "the dashboard graphs callbacks, refusals, bot and store latency, dedup and tokens")
for name in [CALLBACK, WORKER]:
    check(fn_props(name).get("LoggingConfig", {}).get("LogFormat", "Text") == "Text",
          f"{name} logs plain lines (EMF lines reach CloudWatch Logs as they are printed)")
log_groups = [k for k, r in out.items() if r.get("Type") == "AWS::Logs::LogGroup"]
check(log_groups == ["LogGroup"], f"one log group for both functions (got {log_groups})")
check(out.get("LogGroup", {}).get("Properties", {}).get("RetentionInDays") == {"Ref": "LogRetentionDays"}
      and params.get("LogRetentionDays", {}).get("Default") == 30,
      "LogGroup keeps LogRetentionDays (default 30)")
# --- config and secrets in AWS (docs/secrets.md) --------------------------------------------
# Off by default: WXGATE_CONFIG is WxgateConfig and no role may read a parameter or secret.
# Each parameter given adds exactly its grant to both roles, through the one ReferencesRead
# policy (attached with ManagedPolicyArns, so a role has it before its function starts).
for key, kind in [("ConfigParameterName", "String"), ("SecretParameterNames", "CommaDelimitedList"),
                  ("SecretArns", "CommaDelimitedList"), ("SecretsKmsKeyArn", "String")]:
    check(params.get(key, {}).get("Type") == kind and params.get(key, {}).get("Default") == "",
          f"parameter {key}, a {kind} defaulting to empty (nothing read from AWS)")
REFERENCES = {"Ref": "ReferencesRead"}
policy = out.get("ReferencesRead", {})
check(policy.get("Type") == "AWS::IAM::ManagedPolicy" and policy.get("Condition") == "ReadsReferences",
      "ReferencesRead is a managed policy created only under ReadsReferences")
PARTITION, REGION, ACCOUNT = "${AWS::Partition}", "${AWS::Region}", "${AWS::AccountId}"


def reference_grants(given):
    """(action, resource, condition) of ReferencesRead with `given`, or None when it is not
    created."""
    if not value_of(conditions.get("ReadsReferences"), given):
        return None
    document = value_of(policy.get("Properties", {}).get("PolicyDocument", {}), given)
    return {(s["Action"], r, json.dumps(s.get("Condition"), sort_keys=True))
            for s in document.get("Statement", []) for r in as_list(s["Resource"])}


PINNED = json.dumps({"StringEquals": {"aws:ResourceAccount": {"Ref": "AWS::AccountId"},
                                      "aws:RequestedRegion": {"Ref": "AWS::Region"}}}, sort_keys=True)
VIA_SERVICES = json.dumps({"StringEquals": {"kms:ViaService": [{"Fn::Sub": f"ssm.{REGION}.amazonaws.com"},
                                                               {"Fn::Sub": f"secretsmanager.{REGION}.amazonaws.com"}]}},
                          sort_keys=True)
SECRET_A = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wxgate/a-AbCdEf"
SECRET_B = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wxgate/b-*"
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
cases = [
    ({}, None, {"Ref": "WxgateConfig"}),
    ({"ConfigParameterName": "/wxgate/prod/config"},
     {("ssm:GetParameters", f"arn:{PARTITION}:ssm:{REGION}:{ACCOUNT}:parameter/wxgate/prod/config", "null")},
     "ssm:/wxgate/prod/config"),
    ({"SecretParameterNames": "/wxgate/token,/wxgate/aes"},
     {("ssm:GetParameters", "arn:*:ssm:*:*:parameter/wxgate/token", PINNED),
      ("ssm:GetParameters", "arn:*:ssm:*:*:parameter/wxgate/aes", PINNED)},
     {"Ref": "WxgateConfig"}),
    ({"SecretArns": f"{SECRET_A},{SECRET_B}", "SecretsKmsKeyArn": KEY_ARN},
     {("secretsmanager:GetSecretValue", SECRET_A, "null"), ("secretsmanager:GetSecretValue", SECRET_B, "null"),
      ("secretsmanager:BatchGetSecretValue", "*", "null"), ("kms:Decrypt", KEY_ARN, VIA_SERVICES)},
     {"Ref": "WxgateConfig"}),
    # A key alone reads nothing: no policy.
    ({"SecretsKmsKeyArn": KEY_ARN}, None, {"Ref": "WxgateConfig"}),
]
for given, want, config in cases:
    got = reference_grants(given)
    check(got == want, f"ReferencesRead with {given or 'the defaults'}: exactly {want} (got {got})")
    for name in [CALLBACK, WORKER]:
        env = value_of(fn_props(name).get("Environment", {}).get("Variables", {}), given)
        wanted = config if isinstance(config, str) else value_of(config, given)
        check(env.get("WXGATE_CONFIG") == wanted, f"{name}: WXGATE_CONFIG is {wanted!r} with {given or 'the defaults'}")
        pairs, managed = grants(roles[name], given)
        check((json.dumps(REFERENCES) in managed) == (want is not None),
              f"{name}: ReferencesRead attached exactly when something is read ({given or 'the defaults'})")
        check(pairs == expected[name], f"{name}: references add no inline permission")

if failures:
    for f in failures:
        print(f"template-check: FAILED: {f}", file=sys.stderr)
    sys.exit(1)
print("template-check: two functions from one build; routes, throttling, reply-job stream, filter, "
      "permissions, settings, the fixed egress, the custom domain and the config and secrets in AWS "
      "(all off by default), alarms, dashboard and log retention are wired")
