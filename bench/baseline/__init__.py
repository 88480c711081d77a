"""A baseline central system written the documented way on the mobilityhouse ``ocpp`` library."""
