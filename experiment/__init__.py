"""``offcurate experiment``: the blog's study as one resumable run of a YAML recipe (the top layer).

``recipe`` (+ ``schema``, ``train_options``) reads and checks a recipe, ``kinds`` says where data and base
models come from, ``layout`` where each stage writes, ``stages`` runs each command's code into its
folder, ``runner`` orders, records and resumes them, ``command`` is the CLI. Recipes shipped with the
package live in ``recipes/``.
"""
