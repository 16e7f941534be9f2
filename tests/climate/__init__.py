"""Climate: the room model, energy accounting, the energy API and the simulated weather."""
