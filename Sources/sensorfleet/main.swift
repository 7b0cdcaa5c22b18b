import SensorFleetCore
print("sensorfleet")
