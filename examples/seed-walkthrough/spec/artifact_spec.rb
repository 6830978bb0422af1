# The walkthrough's RSpec test: the artifact demo wrote is in the volume, from this build.
RSpec.describe "the artifact in the volume" do
  let(:artifact) { "/app/artifact.txt" }

  it "exists" do
    expect(File).to exist(artifact)
  end

  it "was written by this build" do
    expect(File.read(artifact)).to include("artifact of build #{ENV.fetch('CI_BUILD_ID', 'local')}")
  end
end
