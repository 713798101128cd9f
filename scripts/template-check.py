"""Checks what template.yaml must wire for the gateway, on the template as SAM transforms it
(the same translator `sam deploy` uses; no AWS call): the reply-job stream mapping and its
filter, the permissions SAM derives from it, and the settings the binary reads.

Run by scripts/sam-check.sh with the SAM CLI's venv python.
"""
import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


template = yaml_parse(open(sys.argv[1] if len(sys.argv) > 1 else "template.yaml").read())
# The translator alone: AWS::LanguageExtensions (used only for the Outputs' ForEach) is
# CloudFormation's, and a local CodeUri is replaced by `sam package`.
template["Transform"] = "AWS::Serverless-2016-10-31"
template["Outputs"] = {k: v for k, v in template["Outputs"].items() if not k.startswith("Fn::")}
template["Resources"]["Function"]["Properties"]["CodeUri"] = "s3://bucket/key"


class Policies:
    def load(self):
        return {
            name: f"arn:aws:iam::aws:policy/service-role/{name}"
            for name in ["AWSLambdaBasicExecutionRole", "AWSLambdaDynamoDBExecutionRole"]
        }


out = transform(template, {}, Policies())["Resources"]

table = out["Table"]["Properties"]
check(table.get("StreamSpecification", {}).get("StreamViewType") in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"),
      "the table's stream carries new images (the worker reads the job state)")

env = out["Function"]["Properties"]["Environment"]["Variables"]
check(env.get("WXGATE_REPLY_JOBS") == "stream", "WXGATE_REPLY_JOBS=stream on the function")
check("WXGATE_TABLE" in env, "WXGATE_TABLE on the function")

mappings = [r["Properties"] for r in out.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
check(len(mappings) == 1, "one event source mapping (the reply-job stream)")
if mappings:
    m = mappings[0]
    check(m["EventSourceArn"] == {"Fn::GetAtt": ["Table", "StreamArn"]}, "the mapping reads the table's stream")
    check(m["FunctionName"] == {"Ref": "Function"}, "the mapping invokes the gateway function")
    patterns = [json.loads(f["Pattern"]) for f in m.get("FilterCriteria", {}).get("Filters", [])]
    check(any(p.get("dynamodb", {}).get("NewImage", {}).get("job", {}).get("S") == ["pending"] for p in patterns),
          "the filter passes only records with job = pending (what the claim writes)")
    check("ReportBatchItemFailures" in m.get("FunctionResponseTypes", []),
          "partial batch responses (the worker answers batchItemFailures)")
    check(0 <= m.get("MaximumRetryAttempts", -1) <= 10, "a bounded number of retries")
    destination = m.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    check(destination == {"Fn::GetAtt": ["FailedJobs", "Arn"]}, "failed batches go to the FailedJobs queue")

role = out["FunctionRole"]["Properties"]
check(any("AWSLambdaDynamoDBExecutionRole" in str(a) for a in role.get("ManagedPolicyArns", [])),
      "the role may read the stream")
statements = [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
check(any("sqs:SendMessage" in json.dumps(s.get("Action")) and s.get("Resource") == {"Fn::GetAtt": ["FailedJobs", "Arn"]}
          for s in statements), "the role may send to the FailedJobs queue")
actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
check({"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"} <= actions, "item access on the table")

timeout = out["Function"]["Properties"].get("Timeout", 3)
check(timeout >= 60 + 30 + 5, "Timeout covers a job: deferred_limit_ms (60 s default) + 30 s to send")

if failures:
    for f in failures:
        print(f"template-check: FAILED: {f}", file=sys.stderr)
    sys.exit(1)
print("template-check: reply-job stream, filter, permissions and settings are wired")
