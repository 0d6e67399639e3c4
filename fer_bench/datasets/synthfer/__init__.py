"""synthfer: procedurally rendered cartoon faces with known expression distributions,
simulated annotator votes and exact 68-point landmarks (the built-in default dataset)."""
