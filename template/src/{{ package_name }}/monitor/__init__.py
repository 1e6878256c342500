"""Monitor: whether served inputs and predictions still look like what the model was built on."""
