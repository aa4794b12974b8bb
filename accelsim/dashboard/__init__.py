"""The live what-if dashboard (`accelsim dashboard`): a Dash app over the analytical model.

`controls` validates the page's inputs, `points` and `figures` build the plots, `page` assembles
one state of the page without Dash, `app` wires it to Dash (`create_app`), `cli` registers the command.
"""
