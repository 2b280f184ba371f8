"""Choosing where a flow runs: task runners and the settings the CLI applies around its flows."""

from __future__ import annotations

from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.task_runners import ThreadPoolTaskRunner

from flows.pipeline import pipeline
from flows.runners import heartbeats_off_on_temporary_api, with_task_runner


def test_the_thread_runner_is_the_flow_itself():
    # with_options would rebuild the flow's parameter schema on every CLI call
    assert with_task_runner(pipeline, "thread") is pipeline
    assert isinstance(pipeline.task_runner, ThreadPoolTaskRunner)
    on_dask = with_task_runner(pipeline, "dask", "tcp://127.0.0.1:1")
    assert on_dask is not pipeline and type(on_dask.task_runner).__name__ == "DaskTaskRunner"


def test_heartbeats_are_off_only_on_a_temporary_api():
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 90}):
        with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
            with heartbeats_off_on_temporary_api():  # a configured server: as configured
                assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() == 90
        with temporary_settings(restore_defaults={PREFECT_API_URL}):
            assert not PREFECT_API_URL.value()
            with heartbeats_off_on_temporary_api():  # the temporary local API: nobody reads them
                assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None
            assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() == 90
