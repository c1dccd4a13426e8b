"""Action kinds, written against ports, one package or module per family.

`base` holds what every action imports (spec, context, result, the registry class); `calls` and
`kubernetes_access` the helpers several families share; `shipped` assembles the shipped list,
and nothing here imports it back.
"""
