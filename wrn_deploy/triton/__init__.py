"""Triton Inference Server: model repositories (``repository``), their config (``config``), the
Python-backend model that runs any artifact through wrn-deploy's runners (``python_model``), and
the server process (``server``)."""
