"""Fleet: many node reports in, one verdict out (``tfcompat gate``), and fan-out on Dask (``tfcompat fleet``).

One module per phase of the gate, in the order ``gate.run_gate`` runs them:

- ``read``       inputs: files, directories, globs, ``-``; JSON and JSON Lines -> ``Loaded``
- ``reportdir``  the ``DIR/<node>.json`` contract, writer and reader halves
- ``judge``      one input -> a typed ``model.Report`` -> a verdict at ``--fail-on`` (``join``: image x host)
- ``expect``     completeness: ``--expect`` (``nodeset``), ``--max-age``, duplicates
- ``drift``      TFC601-612, registered rules of scope "fleet", and the comparison within a group
- ``report``     the ``FleetReport`` dataclasses (the gate's JSON contract)
- ``gate``       runs the phases; re-exports the public names
- ``facts``      small readers shared with the renderers; ``dask``: one check per node on a Dask cluster
"""
