"""The lab: topology files, namespace builder, routes, supervision, traffic tools, labctl."""
