"""DR metrics from the store: evidence, backup ages, rates and status per component and spec."""
