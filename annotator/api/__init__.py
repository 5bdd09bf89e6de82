"""The REST API under ``/api/``: DRF views, one module per resource, thin (input in, one service or
selector call, output out). ``permissions`` says who may call what; ``urls`` lists the routes."""
