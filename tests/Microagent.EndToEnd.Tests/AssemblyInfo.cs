// VM boots under TCG on a 2-core machine: run test classes one at a time so boots do not starve each other.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
