"""Lambda's DynamoDB-stream poller, emulated: the table's stream (dynamodbstreams on moto) → a function.

As the template's event source mapping configures it: records that do not match the FilterCriteria are
dropped (Lambda counts them as processed); batches of at most BatchSize records in stream order; with
ReportBatchItemFailures the batch is retried from the lowest failed sequence number; a function error
retries the whole batch (halved first when BisectBatchOnFunctionError); after MaximumRetryAttempts the
failing records go to `dead_letters` (the OnFailure destination) and the shard moves on.
The pump does not poll while nothing happens: the stack wakes it (`wake()`) after each write moto applied
to DynamoDB (aws_server.py); while records await redelivery it looks again every `interval`, and otherwise
once every `idle_interval` only. A shard's batches are delivered one after another, in stream order, each
in one of the function's execution environments.
Not emulated: MaximumBatchingWindowInSeconds, parallelization, shard splits (moto keeps one shard per
table).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .lambdas import LambdaFunction
from .template import StreamMappingSpec

logger = logging.getLogger("refunds_local.streams")


# --- filter criteria (the subset of EventBridge patterns Lambda event filtering supports) ----------------


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether `event` matches one filter `pattern` (all its fields; any value of each list)."""
    for key, expected in pattern.items():
        present = key in event
        value = event.get(key)
        if isinstance(expected, Mapping):
            if not isinstance(value, Mapping) or not matches(expected, value):
                return False
        elif isinstance(expected, list):
            if not any(_matches_value(rule, present, value) for rule in expected):
                return False
        else:
            raise ValueError(f"filter pattern values must be objects or lists, not {expected!r}")
    return True


def _matches_value(rule: Any, present: bool, value: Any) -> bool:
    if isinstance(rule, Mapping) and len(rule) == 1:
        operator, operand = next(iter(rule.items()))
        if operator == "exists":
            return present is bool(operand)
        if not present:
            return False
        if operator == "prefix":
            return isinstance(value, str) and value.startswith(str(operand))
        if operator == "suffix":
            return isinstance(value, str) and value.endswith(str(operand))
        if operator == "equals-ignore-case":
            return isinstance(value, str) and value.lower() == str(operand).lower()
        if operator == "anything-but":
            excluded = operand if isinstance(operand, list) else [operand]
            return value not in excluded
        if operator == "numeric":
            return _numeric(operand, value)
        raise ValueError(f"unsupported filter operator {operator!r}")
    if rule is None:
        return present and value is None
    if isinstance(value, list):
        return rule in value
    return present and value == rule


def _numeric(conditions: Sequence[Any], value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    checks = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        "=": lambda a, b: a == b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    pairs = zip(conditions[::2], conditions[1::2], strict=True)
    return all(checks[operator](value, bound) for operator, bound in pairs)


# --- the pump --------------------------------------------------------------------------------------------


@dataclass
class DeadLetter:
    """Records given up on after the retries (what the OnFailure destination would receive)."""

    shard_id: str
    records: list[dict[str, Any]]
    reason: str


@dataclass
class _Shard:
    shard_id: str
    last_sequence_number: str | None = None  # the last record read (delivered, pending or filtered out)
    pending: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0
    batch_limit: int = 0


class StreamPump:
    """Polls the stream and invokes the function: `pump_once()`/`drain()` for tests, or a thread."""

    def __init__(
        self,
        streams_client: Any,
        stream_arn: str,
        function: LambdaFunction,
        mapping: StreamMappingSpec,
        *,
        region: str,
        interval: float = 0.1,
        idle_interval: float = 10.0,
    ) -> None:
        self._client = streams_client
        self.idle_interval = idle_interval
        self._wake = threading.Event()
        self.stream_arn = stream_arn
        self.function = function
        self.mapping = mapping
        self.region = region
        self.interval = interval
        self.dead_letters: list[DeadLetter] = []
        self.invocations = 0
        self._lock = threading.RLock()
        self._shards: dict[str, _Shard] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="refunds-local-stream-pump", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=max(10.0, self.function.spec.timeout_seconds + 1))
            self._thread = None

    def wake(self) -> None:
        """Something may have been written to the table: look at its stream now."""
        self._wake.set()

    def _run(self) -> None:
        retrying = False
        while not self._stop.is_set():
            waiting = self.interval if retrying else self.idle_interval
            self._wake.wait(waiting)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.pump_once()
                with self._lock:
                    retrying = any(shard.pending for shard in self._shards.values())
            except Exception:
                retrying = True
                logger.exception("stream pump: polling %s failed; retrying", self.stream_arn)

    # -- pumping --

    def drain(self, timeout: float = 30.0) -> int:
        """Pump until the stream has no new records and nothing awaits (re)delivery; records handled."""
        deadline = time.monotonic() + timeout
        total = 0
        while True:
            handled = self.pump_once()
            total += handled
            if handled == 0:
                return total
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stream of {self.stream_arn} did not drain within {timeout} s")

    def pump_once(self) -> int:
        """Fetch new records of every shard, then deliver one batch per shard; how many records moved."""
        with self._lock:
            moved = 0
            for shard in self._discover():
                moved += self._fetch(shard)
                moved += self._deliver(shard)
            return moved

    def _discover(self) -> list[_Shard]:
        description = self._client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for entry in description.get("Shards", []):
            shard_id = entry["ShardId"]
            if shard_id not in self._shards:
                self._shards[shard_id] = _Shard(shard_id, batch_limit=self.mapping.batch_size)
        return list(self._shards.values())

    def _fetch(self, shard: _Shard) -> int:
        # A fresh iterator after the last record read, on every poll: moto binds an iterator to the table
        # object of its time, and replaces that object when a transaction is cancelled (its rollback), so a
        # kept iterator would never see a later record. AWS allows this too (iterators are cheap).
        if shard.last_sequence_number is None:
            position: dict[str, str] = {"ShardIteratorType": self.mapping.starting_position}
        else:
            position = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "SequenceNumber": shard.last_sequence_number,
            }
        iterator = self._client.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard.shard_id, **position
        )
        answer = self._client.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)
        fetched = 0
        for raw in answer.get("Records", []):
            fetched += 1
            shard.last_sequence_number = str(raw["dynamodb"]["SequenceNumber"])
            record = self.lambda_record(raw)
            if self._passes_filters(record):
                shard.pending.append(record)
        return fetched

    def _passes_filters(self, record: Mapping[str, Any]) -> bool:
        patterns = self.mapping.filter_patterns
        return not patterns or any(matches(pattern, record) for pattern in patterns)

    def lambda_record(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """A dynamodbstreams GetRecords record as Lambda delivers it (eventSourceARN, epoch times)."""
        change = dict(raw.get("dynamodb", {}))
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            change["ApproximateCreationDateTime"] = int(created.timestamp())
        return {
            "eventID": raw.get("eventID"),
            "eventName": raw.get("eventName"),
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": raw.get("awsRegion", self.region),
            "dynamodb": change,
            "eventSourceARN": self.stream_arn,
        }

    def _deliver(self, shard: _Shard) -> int:
        if not shard.pending:
            return 0
        batch = shard.pending[: max(1, min(shard.batch_limit, self.mapping.batch_size))]
        self.invocations += 1
        try:
            result = self.function.invoke({"Records": batch})
        except Exception as error:
            logger.warning("%s failed on a batch of %d: %r", self.function.spec.logical_id, len(batch), error)
            if self.mapping.bisect_on_error and len(batch) > 1:
                shard.batch_limit = len(batch) // 2  # bisecting does not count as a retry
                return len(batch)
            return self._failed(shard, 0, batch, f"function error: {error!r}")
        failed_from = self._first_failure(result, batch)
        if failed_from is None:
            del shard.pending[: len(batch)]
            shard.failures = 0
            shard.batch_limit = self.mapping.batch_size
            return len(batch)
        del shard.pending[:failed_from]
        if failed_from:
            shard.failures = 0  # progress was made
        return failed_from + self._failed(shard, failed_from, batch, "batchItemFailures")

    def _first_failure(self, result: Any, batch: Sequence[Mapping[str, Any]]) -> int | None:
        """Index of the first record to redeliver (None: the whole batch succeeded)."""
        if not self.mapping.report_batch_item_failures or result is None:
            return None
        failures = result.get("batchItemFailures") if isinstance(result, Mapping) else None
        if not failures:
            return None
        sequence_numbers = [str(record["dynamodb"].get("SequenceNumber")) for record in batch]
        indexes = []
        for failure in failures:
            identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
            if not identifier or str(identifier) not in sequence_numbers:
                logger.warning("invalid batchItemFailures entry %r: the whole batch fails", failure)
                return 0
            indexes.append(sequence_numbers.index(str(identifier)))
        return min(indexes)

    def _failed(self, shard: _Shard, start: int, batch: Sequence[dict[str, Any]], reason: str) -> int:
        """Count a failed delivery of batch[start:]; give those records up after MaximumRetryAttempts."""
        shard.failures += 1
        limit = self.mapping.maximum_retry_attempts
        if limit < 0 or shard.failures <= limit:
            logger.info("redelivering %d record(s) (retry %d)", len(batch) - start, shard.failures)
            return 0 if start else 1  # a retry is progress for drain(), bounded by the retry limit
        given_up = list(batch[start:])
        del shard.pending[: len(given_up)]
        shard.failures = 0
        shard.batch_limit = self.mapping.batch_size
        self.dead_letters.append(DeadLetter(shard.shard_id, given_up, reason))
        logger.error(
            "%s: %d record(s) given up after %d retries (%s); OnFailure destination",
            self.function.spec.logical_id,
            len(given_up),
            limit,
            reason,
        )
        return len(given_up)
