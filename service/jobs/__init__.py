"""Jobs and sweeps: analyses that outgrow one request, on RQ (Redis) or an in-process pool.

No Flask here: the HTTP API (service/api/jobs.py) and the command line both use `JobService`.

    settings.py  JobSettings from the environment (limits, TTL, quota, backend)
    model.py     plan, record, derived status, content-hash ids
    sweep.py     grid → points (cross product over dotted spec fields)
    summary.py   one sweep point from its report (verdict, growth, theory χ)
    store.py     Redis or SQLite job store, first-write-wins point delivery
    runner.py    run a chunk of points (the one task body for every backend)
    queue.py     dispatch: RQ on Redis, or a thread pool in this process
    health.py    live workers, queue depth, since when no worker (a job's `waiting`)
    stats.py     task outcomes and job run times, counted in the store every process shares
    tasks.py     the RQ task entry point
    worker.py    `gradstab worker`: the RQ worker (no fork; heartbeats while a task runs)
    service.py   JobService: submit, get, cancel; as_dict for clients
"""
