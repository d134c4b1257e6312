
namespace Procrastinate.Internal.Workers;

internal sealed partial class Worker
{
    // ---- Completer -------------------------------------------------------------------------------

    /// <summary>Writes outcomes in batches until the queue is completed at stop, then flushes.</summary>
    private async Task CompleterLoopAsync()
    {
        var batch = new List<JobOutcome>(MaxCompletionBatch);
        while (true)
        {
            // Read the flag first: once it is up, no outcome comes after the ones dequeued below.
            var complete = _outcomesComplete;
            while (batch.Count < MaxCompletionBatch && _outcomes.TryDequeue(out var outcome))
                batch.Add(outcome);
            if (batch.Count == 0)
            {
                if (complete)
                    return;
                await _outcomesReady.WaitAsync(Timeout.InfiniteTimeSpan, CancellationToken.None).ConfigureAwait(false);
                continue;
            }
            await WriteOutcomesAsync(batch).ConfigureAwait(false);
            // A fetcher held back by the unwritten outcomes (ShouldFetch) may claim again now.
            var heldBack = UnwrittenOutcomes >= MaxUnwrittenOutcomes;
            Interlocked.Add(ref _pendingOutcomes, -batch.Count);
            batch.Clear();
            // Released locks and one-shot mode need a fresh look at the queue.
            if (!_options.Wait || _lastFetchFull || heldBack || _orphanCheckDue)
                _wake.Set();
        }
    }

    private async Task WriteOutcomesAsync(List<JobOutcome> batch)
    {
        var finishes = new List<JobOutcome>(batch.Count);
        Queue<JobOutcome>? retries = null;
        foreach (var o in batch)
        {
            if (o.Retry is null)
                finishes.Add(o);
            else
                (retries ??= new()).Enqueue(o);
        }
        var failures = 0;
        long? giveUpAt = null;
        while (finishes.Count > 0 || retries is { Count: > 0 })
        {
            try
            {
                if (finishes.Count > 0)
                {
                    var written = await _store.FinishJobsAsync(finishes, WorkerId, CancellationToken.None).ConfigureAwait(false);
                    if (written.Count < finishes.Count)
                    {
                        foreach (var o in finishes)
                        {
                            if (written.Contains(o.Job.Id))
                                continue;
                            // After a failed attempt, most likely that attempt's commit made it, its
                            // answer lost with the connection.
                            if (failures > 0)
                                Log.OutcomeWrittenBefore(_log, "finish_job", o.Job.Id);
                            else
                                Log.StaleOutcome(_log, "finish_job", o.Job.Id);
                        }
                    }
                    finishes.Clear();
                }
                while (retries is not null && retries.TryPeek(out var retry))
                {
                    await WriteRetryAsync(retry, afterFailure: failures > 0).ConfigureAwait(false);
                    retries.Dequeue();
                }
            }
            catch (Exception e) when (IsTransient(e))
            {
                // Keep the outcomes and try again: a lost write would leave the job 'doing'.
                var delay = Backoff(++failures);
                var pending = finishes.Count + (retries?.Count ?? 0);
                if (_stopping.IsCancellationRequested)
                {
                    giveUpAt ??= _time.GetTimestamp();
                    if (_time.GetElapsedTime(giveUpAt.Value) > CompletionGiveUpAfterStop)
                    {
                        Log.CompletionAbandoned(_log, "finish_job", pending);
                        return;
                    }
                }
                Log.CompletionWriteFailed(_log, "finish_job", pending, delay, e);
                await Task.Delay(delay, _time, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private async Task WriteRetryAsync(JobOutcome retry, bool afterFailure)
    {
        try
        {
            if (await _store.RetryJobAsync(retry, WorkerId, CancellationToken.None).ConfigureAwait(false))
                return;
            // As for finishes (WriteOutcomesAsync): a failed attempt may have written it.
            if (afterFailure)
                Log.OutcomeWrittenBefore(_log, "retry_job", retry.Job.Id);
            else
                Log.StaleOutcome(_log, "retry_job", retry.Job.Id);
        }
        catch (AlreadyEnqueuedException e)
        {
            // Another job already waits under this queueing lock (COMPAT.md W8): end this one as failed.
            Log.RetryQueueingLockConflict(_log, "retry_job", retry.Job.Id, e);
            await _store.FinishJobsAsync([retry with { Retry = null, Status = JobStatus.Failed, DeleteJob = false }], WorkerId, CancellationToken.None)
                .ConfigureAwait(false);
        }
    }

    // ---- Side loops ------------------------------------------------------------------------------

    private async Task HeartbeatLoopAsync(CancellationToken cancellationToken)
    {
        while (await DelayAsync(_options.UpdateHeartbeatInterval, cancellationToken).ConfigureAwait(false))
        {
            try
            {
                if (await _store.UpdateHeartbeatAsync(WorkerId, cancellationToken).ConfigureAwait(false))
                {
                    State.Heartbeat(_time.GetUtcNow());
                    Interlocked.CompareExchange(ref _databaseHealthySince, _time.GetTimestamp(), 0);
                }
                else
                {
                    // Pruned while alive (COMPAT.md W5): register again and carry on.
                    var old = WorkerId;
                    var fresh = await _store.RegisterWorkerAsync(Registration, cancellationToken).ConfigureAwait(false);
                    Interlocked.Exchange(ref _workerId, fresh);
                    _info = _info with { Id = fresh };
                    State.SetId(fresh);
                    State.Heartbeat(_time.GetUtcNow());
                    // The prune cleared worker_id on the jobs still running here: take them back,
                    // or the rescuer would run them a second time.
                    if (!_running.IsEmpty)
                        await _store.ReclaimRunningJobsAsync([.. _running.Keys], fresh, cancellationToken).ConfigureAwait(false);
                    Log.WorkerReregistered(_log, "update_heartbeat", old, fresh);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (IsTransient(e))
            {
                Interlocked.Exchange(ref _databaseHealthySince, 0);
                Log.SideLoopError(_log, "update_heartbeat", "The heartbeat", _options.UpdateHeartbeatInterval, e);
            }
        }
    }

    private async Task RescueLoopAsync(CancellationToken cancellationToken)
    {
        while (await DelayAsync(_options.StalledJobsCheckInterval, cancellationToken).ConfigureAwait(false))
        {
            // After the database was unreachable, nobody could heartbeat: wait until live workers
            // had a whole stalled timeout to heartbeat again before judging anyone dead.
            var healthySince = Interlocked.Read(ref _databaseHealthySince);
            if (healthySince == 0 || _time.GetElapsedTime(healthySince) < _options.StalledWorkerTimeout)
                continue;
            try
            {
                var rescued = await _store.RescueStalledJobsAsync(_options.StalledWorkerTimeout, ShouldRetryStalled, cancellationToken).ConfigureAwait(false);
                foreach (var (job, retried) in rescued)
                    Log.StalledJobRescued(_log, "rescue_stalled_job", job.Id, job.TaskName, job.WorkerId, retried ? "retried" : "failed");
                if (rescued.Any(r => r.Retried))
                    _wake.Set();
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (IsTransient(e))
            {
                Log.SideLoopError(_log, "rescue_stalled_job", "Stalled-job rescue", _options.StalledJobsCheckInterval, e);
            }
        }
    }

    /// <summary>
    /// Vacuums the job table each time this worker has claimed <paramref name="threshold"/> jobs
    /// since the last vacuum (WorkerOptions.VacuumAfterClaimedJobs), spending at most a tenth of
    /// its time on it.
    /// </summary>
    private async Task VacuumLoopAsync(long threshold, CancellationToken cancellationToken)
    {
        var failures = 0;
        var lastDuration = TimeSpan.Zero;
        long lastEnd = 0;
        while (true)
        {
            try
            {
                await _vacuumDue.WaitAsync(Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (Interlocked.Read(ref _claimedSinceVacuum) < threshold)
                continue;
            if (lastEnd != 0)
            {
                var rest = lastDuration * 9 - _time.GetElapsedTime(lastEnd);
                if (rest > TimeSpan.Zero && !await DelayAsync(rest, cancellationToken).ConfigureAwait(false))
                    return;
            }
            var claimed = Interlocked.Exchange(ref _claimedSinceVacuum, 0);
            var start = _time.GetTimestamp();
            try
            {
                var outcome = await _store.VacuumJobsAsync(cancellationToken).ConfigureAwait(false);
                lastDuration = _time.GetElapsedTime(start);
                lastEnd = _time.GetTimestamp();
                failures = 0;
                switch (outcome.Kind)
                {
                    case VacuumOutcomeKind.Done:
                        Log.JobsVacuumed(_log, "vacuum_jobs", lastDuration.TotalMilliseconds, claimed);
                        break;
                    case VacuumOutcomeKind.Skipped:
                        Log.JobsVacuumSkipped(_log, "vacuum_jobs");
                        break;
                    case VacuumOutcomeKind.Refused:
                        Log.JobsVacuumRefused(_log, "vacuum_jobs", outcome.Message ?? "no reason given");
                        return;
                    default:
                        return; // nothing to vacuum in this connector
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (IsTransient(e))
            {
                // The claims go on counting; try again after a pause.
                Interlocked.Add(ref _claimedSinceVacuum, claimed);
                var delay = Backoff(++failures);
                Log.SideLoopError(_log, "vacuum_jobs", "Vacuuming the job table", delay, e);
                if (!await DelayAsync(delay, cancellationToken).ConfigureAwait(false))
                    return;
                _vacuumDue.Set();
            }
        }
    }

    private bool ShouldRetryStalled(Job job)
    {
        switch (_options.StalledJobs)
        {
            case StalledJobPolicy.Retry:
                return true;
            case StalledJobPolicy.RetryPerStrategy:
                var task = _app.FindTask(job.TaskName);
                try
                {
                    return task?.Retry.GetRetryDecision(new StalledJobException(job), job) is not null;
                }
                catch (Exception e)
                {
                    Log.SideLoopError(_log, "rescue_stalled_job", "The retry strategy", TimeSpan.Zero, e);
                    return false;
                }
            default:
                return false;
        }
    }

    /// <summary>Samples the waiting jobs of the served queues for the queue-depth gauge, while someone listens to it.</summary>
    private async Task QueueDepthLoopAsync(CancellationToken cancellationToken)
    {
        var interval = TimeSpan.FromSeconds(10) < _options.FetchJobPollingInterval ? TimeSpan.FromSeconds(10) : _options.FetchJobPollingInterval;
        do
        {
            if (!_app.Telemetry.QueueDepth.Enabled)
                continue;
            try
            {
                var counts = await _store.CountWaitingJobsAsync(_queues, cancellationToken).ConfigureAwait(false);
                foreach (var queue in _queues ?? [.. counts.Keys])
                    _app.Telemetry.SetQueueDepth(queue, counts.GetValueOrDefault(queue));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (IsTransient(e))
            {
                Log.SideLoopError(_log, "queue_depth", "Queue-depth sampling", interval, e);
            }
        }
        while (await DelayAsync(interval, cancellationToken).ConfigureAwait(false));
    }

    private async Task AbortPollLoopAsync(CancellationToken cancellationToken)
    {
        while (await DelayAsync(_options.AbortJobPollingInterval, cancellationToken).ConfigureAwait(false))
        {
            if (_running.IsEmpty)
                continue;
            try
            {
                var ids = await _store.ListAbortRequestedAsync([.. _running.Keys], cancellationToken).ConfigureAwait(false);
                foreach (var id in ids)
                    RequestUserAbort(id);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (IsTransient(e))
            {
                Log.SideLoopError(_log, "poll_abort", "Abort polling", _options.AbortJobPollingInterval, e);
            }
        }
    }

    private Task ListenLoopAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<string> channels = _queues is null
            ? [AnyQueueChannel]
            : [.. _queues.Select(q => QueueChannelPrefix + q)];
        Log.Listening(_log, "listen", string.Join(", ", channels));
        return _store.ListenAsync(channels, OnNotification, listening =>
        {
            State.SetListening(listening);
            if (listening)
            {
                // Notifications may have been missed while disconnected, a scheduled job's among them.
                InvalidateNextDue();
                _wake.Set();
            }
            else
                Log.ListenerLost(_log, "listen");
        }, cancellationToken);
    }

    private void OnNotification(string channel, string payload)
    {
        if (!TryParseNotification(payload, out var type, out var jobId))
        {
            Log.BadNotification(_log, "listen", channel);
            return;
        }
        switch (type)
        {
            case "job_inserted":
                InvalidateNextDue();
                // On the listener's own thread, the fetcher sends its claim from here, up to the
                // claim's first await: no other thread to wake on the way from defer to start.
                if (_store.NotifiesOnListenerThread)
                    _wake.SetInline();
                else
                    _wake.Set();
                break;
            case "abort_job_requested" when jobId is { } id:
                RequestUserAbort(id);
                break;
            default:
                break; // unknown types are ignored, as Python does
        }
    }

    private void RequestUserAbort(long jobId)
    {
        if (_running.TryGetValue(jobId, out var running) && running.Context.RequestAbort(AbortReason.UserRequest))
            Log.AbortRequested(_log, "abort_job", jobId);
    }
}
