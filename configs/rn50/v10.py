_base_ = './v9.py'
remark = 'Surveillance-style prompt template.'

model = dict(
    prompt=dict(
        template="A captured frame showing a {} person's {aspect} hand during surveillance."
    ),
)
