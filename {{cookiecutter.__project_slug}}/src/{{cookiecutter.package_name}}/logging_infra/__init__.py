"""The logging machinery behind ``config.py``: no need to edit anything here.

- ``coexist``: Hydra, notebooks and libraries that configure logging too
- ``configure``: what ``setup_logging()`` does with LOGGING_CONFIG
- ``console``: the console handler: progress bars kept whole{{ ", Rich on a terminal" if cookiecutter.console_style == "rich" }}
- ``context``: the run id, rank and host on every record
- ``files``: private, rotating log files
{%- if cookiecutter.log_format == "json" %}
- ``json_format``: one JSON object per line
{%- endif %}
- ``libraries``: other libraries' records once, through these handlers
- ``redact``: masks secrets in every sink
- ``relay``: how every process of a run reaches the one that writes the files
- ``runs``: run directories, ``latest``, retention and the run record (run.json)
- ``sigterm``: SIGTERM writes what is queued, then ends the process
{%- if cookiecutter.tracker != "none" %}
- ``tracking``: ``log_metrics()`` to metrics.jsonl and {{ "MLflow" if cookiecutter.tracker == "mlflow" else "TensorBoard" }}, from a thread
{%- endif %}
- ``text_format``: {{ "the console's" if cookiecutter.log_format == "json" else "one line per record," }} control characters escaped
- ``writer``: the background writer, worker processes and exit
"""
