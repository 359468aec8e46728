"""The fake Coze's workflow routes (a mixin of CozeUpstream, tests/fakes/coze.py).

    POST /v1/workflow/stream_run      output-node pieces + the end node's JSON, PING, Error, Interrupt
    POST /v1/workflow/stream_resume   answers an Interrupt by its event id
"""
from __future__ import annotations

import json

from .coze_wire import INTERRUPT_QUESTION, WORKFLOWS, workflow_event, workflow_text
from .upstream import Received, Reply


class WorkflowRoutes:

    def workflow(self, received: Received, resume: bool) -> Reply:
        body = received.json
        workflow_id = body.get("workflow_id")
        behaviour = WORKFLOWS.get(workflow_id)
        if behaviour is None:
            return self.error(4200, f"Requested resource workflow_id={workflow_id} does not exist.")
        if behaviour == "unpublished":
            return self.error(4200, f"The workflow {workflow_id} is not published. Publish it before calling the API.")
        if body.get("bot_id") and body.get("app_id"):
            return self.error(4000, "Request parameter error: bot_id and app_id cannot both be set")
        if resume:
            with self.state:
                waiting = self.interrupts.pop(body.get("event_id"), None)
            if waiting is None or waiting["workflow_id"] != workflow_id:
                return self.error(4000, f"Request parameter error: no interrupted run with event_id {body.get('event_id')}")
            if body.get("interrupt_type") != 2:
                return self.error(4000, "Request parameter error: interrupt_type does not match")
            text = workflow_text(f"{waiting['value']} / {body.get('resume_data')}")
            events = [("Message", {"content": text, "content_type": "text", "node_is_finish": True, "node_seq_id": "0",
                                   "node_title": "Answer"}),
                      ("Done", {"debug_url": "https://www.coze.com/work_flow?execute_id=1"})]
            return self.workflow_stream(events)
        parameters = body.get("parameters") or {}
        if isinstance(parameters, str):
            parameters = json.loads(parameters)
        value = parameters.get("input")
        if value is None:
            return self.workflow_stream([("Error", {"error_code": 4000, "error_message": "Request parameter error: "
                                                   "the start node needs the parameter 'input'"})])
        text = workflow_text(value)
        usage = {"input_count": 40, "output_count": 12, "token_count": 52}
        end = {"content": json.dumps({"output": text}, ensure_ascii=False), "cost": "0.00", "node_is_finish": True,
               "node_seq_id": "0", "node_title": "", "token": 0, "usage": usage}
        if behaviour == "output":
            words = text.split(" ")
            events: list[tuple[str, dict]] = []
            for index, word in enumerate(words):
                piece = word if index == len(words) - 1 else word + " "
                events.append(("Message", {"content": piece, "node_is_finish": index == len(words) - 1,
                                           "node_seq_id": str(index), "node_title": "Message"}))
                if index == 1:
                    events.append(("PING", {}))
            return self.workflow_stream(events + [("Message", end), ("Done", {})])
        if behaviour == "end":
            return self.workflow_stream([("PING", {}), ("Message", end), ("Done", {})])
        if behaviour == "interrupt":
            event_id = f"{self.new_id()}/{self.new_id()}"
            with self.state:
                self.interrupts[event_id] = {"workflow_id": workflow_id, "value": value}
            return self.workflow_stream([
                ("Message", {"content": INTERRUPT_QUESTION, "content_type": "text", "node_is_finish": True,
                             "node_seq_id": "0", "node_title": "问答"}),
                ("Interrupt", {"interrupt_data": {"data": "", "event_id": event_id, "type": 2}, "node_title": "问答"}),
            ])
        if behaviour == "error":
            return self.workflow_stream([
                ("Message", {"content": "partial ", "node_is_finish": False, "node_seq_id": "0", "node_title": "Message"}),
                ("Error", {"error_code": 5000, "error_message": "node execution failed: the code node raised",
                           "debug_url": "https://www.coze.com/work_flow?execute_id=2"})])
        raise ValueError(f"unknown workflow behaviour {behaviour}")

    def workflow_stream(self, events: list[tuple[str, dict]]) -> Reply:
        chunks = [workflow_event(number, name, data) for number, (name, data) in enumerate(events)]
        return Reply(chunks=chunks, delay=self.delay, headers={"x-tt-logid": self.logid()})
