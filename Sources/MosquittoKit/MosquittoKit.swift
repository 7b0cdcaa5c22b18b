internal import CMosquitto
