"""Drives Puffle's MCP server with the official MCP Python SDK (`mcp` on PyPI),
an independent client: tests/tests/mcp.rs runs it against the local stack.

    mcp_client.py journey --transport stdio --command target/debug/puffle --api-url URL --token T
    mcp_client.py journey --transport http --url URL/mcp --token T [--mode auto]
    mcp_client.py errors  --transport stdio|http ... --token POOR --bad-token BAD

`journey` is the agent journey (leads -> list -> preview -> start -> wait ->
results, resources too); `errors` covers a 402, SUBJECT_MISMATCH, a bad token
and no token, argument errors and retry_failed. Protocol-level checks are
asserted here; the last stdout line is a JSON summary the Rust test checks
against the API itself. With --transcript FILE the journey's calls and results
are written there (the README's transcript comes from it).
"""

import argparse
import atexit
import json
import shutil
import sys
import tempfile
import uuid

import anyio
import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

TOOLS = {
    "list_enrichments", "get_enrichment", "preview_enrichment", "start_enrichment", "get_run",
    "wait_for_run", "list_results", "cancel_run", "retry_failed", "search_leads", "create_leads",
    "create_list", "add_to_list", "get_credits",
}
TEMPLATES = {"puffle://runs/{runId}", "puffle://runs/{runId}/results"}


class Session:
    """One connected client and the transcript of its tool calls."""

    def __init__(self, client, transcript):
        self.c = client
        self.transcript = transcript

    async def call(self, name, args, error=False):
        r = await self.c.call_tool(name, args)
        result = r.structured_content
        if result is None:  # errors rmcp raises itself (bad arguments) are text only
            result = {"text": "".join(getattr(b, "text", "") for b in r.content)}
        self.transcript.append({"tool": name, "arguments": args, "isError": bool(r.is_error), "result": result})
        assert bool(r.is_error) == error, f"{name}({args}): isError={r.is_error}: {result}"
        if r.structured_content is not None:
            # The text content is the same JSON, for clients that show only text.
            text = "".join(getattr(b, "text", "") for b in r.content)
            assert json.loads(text) == r.structured_content, f"{name}: text and structuredContent differ"
        return result

    async def read(self, uri):
        r = await self.c.read_resource(uri)
        assert len(r.contents) == 1, r
        assert r.contents[0].mime_type == "application/json", r
        body = json.loads(r.contents[0].text)
        self.transcript.append({"resource": uri, "contents": body})
        return body


def connect(args, token, mode):
    """A Client on the chosen transport with `token` (None: no token at all)."""
    if args.transport == "stdio":
        config_home = tempfile.mkdtemp(prefix="puffle-mcp-")
        # The CLI's config dir for this session only; gone when the client exits.
        atexit.register(shutil.rmtree, config_home, True)
        env = {"PUFFLE_API_URL": args.api_url, "XDG_CONFIG_HOME": config_home}
        if token is not None:
            env["PUFFLE_TOKEN"] = token
        server = StdioServerParameters(command=args.command, args=["mcp"], env=env)
        return Client(server, mode=mode, read_timeout_seconds=90), None
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=90))
    return Client(streamable_http_client(args.url, http_client=http), mode=mode, read_timeout_seconds=90), http


async def session(args, token, mode, transcript, body):
    client, http = connect(args, token, mode)
    try:
        async with client as c:
            assert c.server_info is not None and c.server_info.name == "puffle", c.server_info
            return await body(Session(c, transcript), c)
    finally:
        if http is not None:
            await http.aclose()


def person(tag):
    return {
        "type": "person",
        "name": {"full": f"Ada {tag}"},
        "title": "CTO",
        "contacts": [{"type": "email", "value": f"ada.{tag}@{tag}.example.com"}],
    }


async def journey(args):
    transcript = []
    tag = uuid.uuid4().hex[:10]

    async def body(s, c):
        summary = {"protocolVersion": c.protocol_version}
        assert "preview_enrichment" in (c.instructions or ""), c.instructions
        tools = (await c.list_tools()).tools
        assert {t.name for t in tools} == TOOLS, sorted(t.name for t in tools)
        for t in tools:
            assert t.input_schema["type"] == "object", t
            assert t.description, t.name
        start = next(t for t in tools if t.name == "start_enrichment").input_schema
        assert start["required"] == ["enrichmentId", "scope"], start
        assert {"enrichmentId", "scope", "input", "output", "idempotencyKey", "mode"} <= set(start["properties"]), start
        wait = next(t for t in tools if t.name == "wait_for_run").input_schema
        assert wait["properties"]["timeoutSeconds"]["maximum"] == 60, wait
        templates = (await c.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == TEMPLATES, templates

        enrichment = (await s.call("get_enrichment", {"enrichmentId": "email_domain"}))["enrichments"][0]
        assert enrichment["subject"] == "person", enrichment
        per_lead = enrichment["costModel"]["creditsPerLead"]
        key = enrichment["defaultOutputAttributeKey"]

        created = await s.call("create_leads", {"leads": [person(f"{tag}a"), person(f"{tag}b")]})
        assert created["created"] == 2, created
        lead_ids = [l["id"] for l in created["leads"]]
        lst = (await s.call("create_list", {"name": f"MCP {tag}", "leadType": "person"}))["list"]
        added = (await s.call("add_to_list", {"listId": lst["id"], "leadIds": lead_ids}))["list"]
        assert added["leadCount"] == 2, added
        balance = (await s.call("get_credits", {}))["balance"]

        run_args = {"enrichmentId": "email_domain", "scope": {"type": "list", "listId": lst["id"]}, "input": {}}
        preview = await s.call("preview_enrichment", run_args)
        assert preview["leadCount"] == 2 and preview["preview"]["creditsRequired"] == 2 * per_lead, preview
        assert preview["runId"] is None, "a preview creates no run"

        started = await s.call("start_enrichment", run_args)
        assert started["reusedExistingRun"] is False and started["leadCount"] == 2, started
        idem = started["idempotencyKey"]
        assert idem, started
        again = await s.call("start_enrichment", {**run_args, "idempotencyKey": idem})
        assert again["reusedExistingRun"] is True and again["runId"] == started["runId"], again
        run_id = started["runId"]

        for _ in range(10):  # a hang guard: each call waits up to 30 s (20 s over HTTP)
            waited = await s.call("wait_for_run", {"runId": run_id, "timeoutSeconds": 30})
            if waited["terminal"]:
                break
        assert waited["terminal"] and waited["run"]["status"] == "completed", waited

        results = await s.call("list_results", {"runId": run_id})
        assert sorted(i["leadId"] for i in results["items"]) == sorted(lead_ids), results
        assert all(i["status"] == "completed" for i in results["items"]), results
        failed = await s.call("list_results", {"runId": run_id, "status": "failed"})
        assert failed["items"] == [], failed

        run = await s.read(f"puffle://runs/{run_id}")
        assert run["run"]["id"] == run_id and run["run"]["status"] == "completed", run
        page = await s.read(f"puffle://runs/{run_id}/results?status=completed&limit=1")
        assert len(page["items"]) == 1 and page["page"]["hasMore"] is True, page

        lead = (await s.call("search_leads", {"leadId": lead_ids[0]}))["lead"]
        assert lead["attributes"][key]["domain"] == f"{tag}a.example.com", lead
        after = (await s.call("get_credits", {}))["balance"]
        assert after == balance - 2 * per_lead, (balance, after)
        summary.update(runId=run_id, listId=lst["id"], leadIds=lead_ids, idempotencyKey=idem,
                       balanceBefore=balance, balanceAfter=after)
        return summary

    summary = await session(args, args.token, args.mode, transcript, body)
    if args.transcript:
        with open(args.transcript, "w") as f:
            json.dump(transcript, f, indent=1)
    return summary


async def errors(args):
    transcript = []
    tag = uuid.uuid4().hex[:10]
    summary = {}

    async def poor(s, c):
        summary["protocolVersion"] = c.protocol_version
        balance = (await s.call("get_credits", {}))["balance"]
        people = (await s.call("create_leads", {"leads": [person(f"{tag}{i}") for i in range(3)]}))["leads"]
        company = (await s.call("create_leads", {"leads": [
            {"type": "company", "company": {"name": "Acme", "domain": f"{tag}.example.org"}}]}))["leads"][0]
        scope = {"type": "explicit_leads", "leadIds": [p["id"] for p in people]}
        preview = await s.call("preview_enrichment", {"enrichmentId": "email_domain", "scope": scope})
        assert preview["preview"]["affordable"] is False, preview

        e = await s.call("start_enrichment", {"enrichmentId": "email_domain", "scope": scope}, error=True)
        assert e["code"] == "INSUFFICIENT_CREDITS" and e["httpStatus"] == 402, e
        assert e["required"] == preview["preview"]["creditsRequired"] and e["balance"] == balance, e
        assert e["idempotencyKey"], "a failed start still names its key"

        e = await s.call("start_enrichment", {"enrichmentId": "email_domain",
                                               "scope": {"type": "explicit_leads", "leadIds": [company["id"]]}}, error=True)
        assert e["code"] == "SUBJECT_MISMATCH" and e["httpStatus"] == 400, e
        e = await s.call("preview_enrichment", {"enrichmentId": "email_domain",
                                                 "scope": {"type": "list", "listId": "list_missing"}}, error=True)
        assert e["code"] == "LIST_NOT_FOUND", e
        e = await s.call("get_run", {"runId": "run_missing"}, error=True)
        assert e["code"] == "RUN_NOT_FOUND" and e["httpStatus"] == 404, e
        e = await s.call("wait_for_run", {"runId": "run_missing", "timeoutSeconds": 61}, error=True)
        assert e["code"] == "INVALID_REQUEST" and e["details"]["field"] == "timeoutSeconds", e
        e = await s.call("get_run", {"run_id": "x"}, error=True)
        assert "run_id" in e["text"], e
        # The retry endpoint is another issue's: until it lands this is the API's own 404.
        r = await c.call_tool("retry_failed", {"runId": "run_missing"})
        s.transcript.append({"tool": "retry_failed", "arguments": {"runId": "run_missing"}, "isError": r.is_error,
                             "result": r.structured_content})
        assert r.structured_content["idempotencyKey"], r
        if r.is_error:
            assert r.structured_content["code"] and r.structured_content["httpStatus"] == 404, r
        try:
            await s.read("puffle://runs/run_missing")
            raise AssertionError("reading a missing run succeeded")
        except MCPError as err:
            assert err.error.data["code"] == "RUN_NOT_FOUND", err.error
        summary.update(balance=balance, companyId=company["id"], peopleIds=[p["id"] for p in people])

    await session(args, args.token, args.mode, transcript, poor)

    async def refused(s, c):
        # The server starts and lists its tools; each call answers UNAUTHENTICATED.
        assert {t.name for t in (await c.list_tools()).tools} == TOOLS
        e = await s.call("get_credits", {}, error=True)
        assert e["code"] == "UNAUTHENTICATED" and e["httpStatus"] == 401, e
        e = await s.call("start_enrichment", {"enrichmentId": "email_domain",
                                               "scope": {"type": "list", "listId": "l"}}, error=True)
        assert e["code"] == "UNAUTHENTICATED", e
        try:
            await s.read("puffle://runs/run_missing")
            raise AssertionError("reading without a valid token succeeded")
        except MCPError as err:
            assert err.error.data["code"] == "UNAUTHENTICATED", err.error
        return e["message"]

    summary["badToken"] = await session(args, args.bad_token, args.mode, transcript, refused)
    summary["noToken"] = await session(args, None, args.mode, transcript, refused)
    if args.transcript:
        with open(args.transcript, "w") as f:
            json.dump(transcript, f, indent=1)
    return summary


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["journey", "errors"])
    p.add_argument("--transport", choices=["stdio", "http"], required=True)
    p.add_argument("--command", help="the puffle binary (stdio)")
    p.add_argument("--api-url", help="the API base URL puffle mcp calls (stdio)")
    p.add_argument("--url", help="the /mcp endpoint (http)")
    p.add_argument("--token", required=True)
    p.add_argument("--bad-token", default="pfl_not_a_token")
    p.add_argument("--mode", default="legacy", help="legacy (initialize handshake) or auto (2026-07-28 discovery)")
    p.add_argument("--transcript")
    args = p.parse_args()
    run = journey if args.scenario == "journey" else errors
    summary = anyio.run(run, args)
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
