"""The abstract interpreter and the facts it records about one file: values, the layer
graph, how models are used, and which classes build batch norm."""
